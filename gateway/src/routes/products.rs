//! Products (seed 000 and beyond): list, create, read, update, delete and adjust stock. Who may
//! write is the inventory service's decision (PERMISSION_DENIED → 403).

use std::sync::Arc;

use axum::{
    extract::State,
    http::{Method, StatusCode},
};
use proto::inventory::v1::{
    AdjustStockRequest, CreateProductRequest, DeleteProductRequest, GetProductRequest,
    ListProductsRequest, UpdateProductRequest,
};
use service_kit::validation::{FieldErrors, REQUIRED};

use super::{Endpoint, Written, pages};
use crate::{
    clients::Upstreams,
    error::ApiError,
    extract::{Authenticated, Fields, ObjectId, Paging},
    openapi::Operation,
    shapes::{PageBody, ProductBody, ReplyJson, ReplyMemo},
};

const PRODUCT_FIELDS: &[&str] = &["name", "description", "price", "quantity"];

/// What a full update (PUT) must send, as DRF requires of a full update: the fields a new
/// product needs. (On create, the inventory service says what is missing.)
const REQUIRED_ON_PUT: &[&str] = &["name", "price"];

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/api/products/",
                "List products (?limit=&offset= pages)",
                &[],
                200,
            )
            .authenticated(),
            list,
        ),
        Endpoint::new(
            Operation::new(
                Method::POST,
                "/api/products/",
                "Create a product (writers)",
                PRODUCT_FIELDS,
                201,
            )
            .authenticated()
            .idempotent(),
            create,
        ),
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/api/inventory/",
                "List products (?limit=&offset= pages)",
                &[],
                200,
            )
            .authenticated(),
            list,
        ),
        Endpoint::new(
            Operation::new(Method::GET, "/api/products/{id}/", "One product", &[], 200)
                .authenticated(),
            retrieve,
        ),
        Endpoint::new(
            Operation::new(
                Method::PUT,
                "/api/products/{id}/",
                "Replace a product (writers; name and price required)",
                PRODUCT_FIELDS,
                200,
            )
            .authenticated()
            .idempotent(),
            update,
        ),
        Endpoint::new(
            Operation::new(
                Method::PATCH,
                "/api/products/{id}/",
                "Update some fields of a product (writers)",
                PRODUCT_FIELDS,
                200,
            )
            .authenticated()
            .idempotent(),
            update,
        ),
        Endpoint::new(
            Operation::new(
                Method::DELETE,
                "/api/products/{id}/",
                "Delete a product (writers)",
                &[],
                204,
            )
            .authenticated()
            .idempotent(),
            destroy,
        ),
        Endpoint::new(
            Operation::new(
                Method::POST,
                "/api/products/{id}/adjust-stock/",
                "Add delta to the quantity; never below 0 (writers)",
                &["delta"],
                200,
            )
            .authenticated()
            .idempotent(),
            adjust_stock,
        ),
    ]
}

/// The body's product fields ([`PRODUCT_FIELDS`]), as the create message carries them; those
/// in `required` must be there. Update builds its message from this one, taken apart, so a
/// field added to the proto is read in this one place and passed on or refused by the compiler.
fn read_product(fields: &Fields, required: &[&str]) -> Result<CreateProductRequest, ApiError> {
    let mut errors = FieldErrors::new();
    for &name in required {
        if !fields.contains(name) {
            errors.add(name, REQUIRED);
        }
    }
    let product = CreateProductRequest {
        name: fields.text("name", &mut errors),
        description: fields.text("description", &mut errors),
        price: fields.decimal("price", &mut errors),
        quantity: fields.integer("quantity", &mut errors),
    };
    errors.into_result()?;
    Ok(product)
}

async fn list(
    State(upstreams): State<Upstreams>,
    State(replies): State<Arc<ReplyMemo>>,
    Authenticated(caller): Authenticated,
    paging: Paging,
) -> Result<PageBody<Arc<ReplyJson>>, ApiError> {
    // Only DRF's envelope shows a count; a plain list is read without one.
    let skip_total_count = paging.limit.is_none();
    let (upstreams, replies) = (&upstreams, &replies);
    let page = pages::read_all(&paging, |offset, limit| {
        let request = caller.request(ListProductsRequest {
            limit: Some(limit),
            offset,
            skip_total_count,
        });
        async move {
            let reply = upstreams
                .list_products_reply(request)
                .await
                .map_err(ApiError::inventory)?;
            let json = replies.of(&reply)?;
            Ok(pages::Batch {
                count: json.count,
                total: json.total,
                more: json.more,
                items: vec![json],
            })
        }
    })
    .await?;
    Ok(PageBody::new(page.items, page.total, &paging))
}

async fn create(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    fields: Fields,
) -> Result<(StatusCode, Written<ProductBody>), ApiError> {
    let request = read_product(&fields, &[])?;
    let created = upstreams
        .inventory()
        .create_product(caller.write_request(request))
        .await
        .map_err(ApiError::inventory)?;
    Ok((StatusCode::CREATED, Written::of(created, ProductBody)))
}

async fn retrieve(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    ObjectId(id): ObjectId,
) -> Result<ProductBody, ApiError> {
    let product = upstreams
        .inventory()
        .get_product(caller.request(GetProductRequest { id }))
        .await
        .map_err(ApiError::inventory)?
        .into_inner();
    Ok(ProductBody(product))
}

/// PUT and PATCH: only the fields sent change, but PUT must send the required ones.
async fn update(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    method: Method,
    ObjectId(id): ObjectId,
    fields: Fields,
) -> Result<Written<ProductBody>, ApiError> {
    let required = if method == Method::PUT {
        REQUIRED_ON_PUT
    } else {
        &[]
    };
    let CreateProductRequest {
        name,
        description,
        price,
        quantity,
    } = read_product(&fields, required)?;
    let request = UpdateProductRequest {
        id,
        name,
        description,
        price,
        quantity,
    };
    let updated = upstreams
        .inventory()
        .update_product(caller.write_request(request))
        .await
        .map_err(ApiError::inventory)?;
    Ok(Written::of(updated, ProductBody))
}

async fn destroy(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    ObjectId(id): ObjectId,
) -> Result<Written<StatusCode>, ApiError> {
    let deleted = upstreams
        .inventory()
        .delete_product(caller.write_request(DeleteProductRequest { id }))
        .await
        .map_err(ApiError::inventory)?;
    Ok(Written::of(deleted, |_| StatusCode::NO_CONTENT))
}

async fn adjust_stock(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    ObjectId(id): ObjectId,
    fields: Fields,
) -> Result<Written<ProductBody>, ApiError> {
    let mut errors = FieldErrors::new();
    if !fields.contains("delta") {
        errors.add("delta", REQUIRED);
    }
    let delta = fields.integer("delta", &mut errors);
    errors.into_result()?;
    let request = AdjustStockRequest {
        id,
        delta: delta.unwrap_or_default(),
    };
    let adjusted = upstreams
        .inventory()
        .adjust_stock(caller.write_request(request))
        .await
        .map_err(ApiError::inventory)?;
    Ok(Written::of(adjusted, ProductBody))
}
