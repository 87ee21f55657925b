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
use service_kit::validation::FieldErrors;

use super::objects::{self, prelude::*};
use crate::{
    openapi::{Content, Field, Operation, Refusal, Schema},
    shapes::{PageBody, ProductBody, ReplyJson, ReplyMemo, page_schema},
};

/// A product's fields as a body sends them (create, PUT): a new product needs a name and a
/// price, and so does a full update, as DRF requires of one. (On create, the inventory service
/// says what is missing; on PUT, [`read_product`] does.)
const PRODUCT: &[Field] = &[
    Field::text("name").required(),
    Field::text("description"),
    Field::decimal("price").required(),
    Field::integer("quantity"),
];

/// PATCH: the fields sent change, none is required.
const PRODUCT_CHANGES: &[Field] = &[
    Field::text("name"),
    Field::text("description"),
    Field::decimal("price"),
    Field::integer("quantity"),
];

const BODIES: Bodies = Bodies {
    create: PRODUCT,
    replace: PRODUCT,
    update: PRODUCT_CHANGES,
};

/// `POST /api/products/{id}/adjust-stock/`.
const ADJUSTMENT: &[Field] = &[Field::integer("delta").required()];

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
        &BODIES,
        &SUMMARIES,
        (list, create, update),
    );
    // Seed 000's name for the same list.
    let list_inventory = Endpoint::new(
        Operation::new(
            Method::GET,
            "/api/inventory/",
            SUMMARIES.list,
            200,
            page_schema(ProductBody::schema()),
        )
        .authenticated(),
        list,
    );
    let adjust_stock = Endpoint::new(
        Operation::new(
            Method::POST,
            "/api/products/{id}/adjust-stock/",
            "Add delta to the quantity; never below 0 (writers)",
            200,
            ProductBody::schema(),
        )
        .body(ADJUSTMENT.iter().copied())
        .also(
            409,
            "Too little stock",
            Content::Json(Refusal::Detail.schema()),
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

/// The body's product fields ([`PRODUCT`]), as the create message carries them; those
/// `table` requires must be there. Update builds its message from this one, taken apart, so a
/// field added to the proto is read in this one place and passed on or refused by the compiler.
fn read_product(fields: &Fields, table: &[Field]) -> Result<CreateProductRequest, ApiError> {
    let mut errors = FieldErrors::new();
    fields.require(table, &mut errors);
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
    // The service says what a new product lacks.
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
    let table = if method == Method::PUT {
        PRODUCT
    } else {
        PRODUCT_CHANGES
    };
    let CreateProductRequest {
        name,
        description,
        price,
        quantity,
    } = read_product(&fields, table)?;
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
    fields.require(ADJUSTMENT, &mut errors);
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

    fn schema() -> Schema {
        ProductBody::schema()
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
