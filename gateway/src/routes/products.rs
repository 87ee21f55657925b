//! Products (seed 000 and beyond): list, create, read, update, delete and adjust stock. Who may
//! write is the inventory service's decision (PERMISSION_DENIED → 403).

use std::sync::Arc;

use axum::{
    extract::State,
    http::{Method, StatusCode},
};
use proto::inventory::v1::{
    AdjustStockRequest, CreateProductRequest, DeleteProductRequest, DeleteProductResponse,
    GetProductRequest, ListProductsRequest, Product, UpdateProductRequest,
};
use service_kit::validation::{FieldErrors, REQUIRED};

use super::objects::{self, prelude::*};
use crate::{
    openapi::Operation,
    shapes::{PageBody, ProductBody, ReplyJson, ReplyMemo},
};

const PRODUCT_FIELDS: &[&str] = &["name", "description", "price", "quantity"];

/// What a full update (PUT) must send, as DRF requires of a full update: the fields a new
/// product needs. (On create, the inventory service says what is missing.)
const REQUIRED_ON_PUT: &[&str] = &["name", "price"];

const SUMMARIES: Summaries = Summaries {
    list: "List products (?limit=&offset= pages)",
    create: "Create a product (writers)",
    retrieve: "One product",
    replace: "Replace a product (writers; name and price required)",
    update: "Update some fields of a product (writers)",
    destroy: "Delete a product (writers)",
};

pub fn endpoints() -> Vec<Endpoint> {
    let [list_products, create, retrieve, replace, update, destroy] = objects::model_view_set(
        Products,
        ["/api/products/", "/api/products/{id}/"],
        PRODUCT_FIELDS,
        &SUMMARIES,
        (list, create, update),
    );
    // Seed 000's name for the same list.
    let list_inventory = Endpoint::new(
        Operation::new(Method::GET, "/api/inventory/", SUMMARIES.list, &[], 200).authenticated(),
        list,
    );
    let adjust_stock = Endpoint::new(
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
    );
    vec![
        list_products,
        create,
        list_inventory,
        retrieve,
        replace,
        update,
        destroy,
        adjust_stock,
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

/// Products, as the detail routes shared with users reach them.
struct Products;

impl Kept for Products {
    type Object = Product;
    type Body = ProductBody;
    type Deleted = DeleteProductResponse;
    const BACKEND: Backend = Backend::Inventory;

    fn show(product: Product) -> ProductBody {
        ProductBody(product)
    }

    async fn get(upstreams: &Upstreams, request: tonic::Request<i64>) -> Reply<Product> {
        let request = request.map(|id| GetProductRequest { id });
        upstreams.inventory().get_product(request).await
    }

    async fn delete(upstreams: &Upstreams, request: tonic::Request<i64>) -> Reply<Self::Deleted> {
        let request = request.map(|id| DeleteProductRequest { id });
        upstreams.inventory().delete_product(request).await
    }
}
