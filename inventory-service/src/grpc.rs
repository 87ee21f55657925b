//! `inventory.v1.InventoryService`: each RPC authorizes the caller the auth layer put in the
//! request, parses the message into domain types, calls the store and translates back; the
//! writes go through [`Writes`], which applies a write with an `idempotency-key` once. No SQL
//! and no validation rules live here.

use std::time::SystemTime;

use prost::Message as _;
use proto::{
    MAX_PAGE_SIZE,
    auth::v1::User,
    inventory::v1::{
        self as pb, inventory_service_server::InventoryService,
        inventory_service_server::InventoryServiceServer,
    },
};
use service_kit::idempotency::{Keyed, Write, Writes};
use sqlx::AnyConnection;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::{
    cache::Products,
    domain::{NewProduct, ProductChanges, StockDelta},
    error::InventoryError,
    store::{Page, Product, ProductStore},
};

/// What a call does to products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// The permission rules of `API.md`: reading needs an active user; writing needs is_staff or
/// role MANAGER or ADMIN. The caller's user id, which scopes its idempotency keys.
fn authorize<T>(request: &Request<T>, access: Access) -> Result<i64, InventoryError> {
    // Absent only if the service was mounted without the auth layer: refuse rather than serve.
    let user = request
        .extensions()
        .get::<User>()
        .ok_or(InventoryError::CredentialsMissing)?;
    let allowed = user.is_active
        && match access {
            Access::Read => true,
            Access::Write => user.is_staff || user.role().writes_products(),
        };
    if allowed {
        Ok(user.id)
    } else {
        Err(InventoryError::PermissionDenied)
    }
}

/// The key a write carries, checked, for the caller `authorize` let in.
fn keyed<T: prost::Message>(
    request: &Request<T>,
    method: &'static str,
) -> Result<Option<Keyed>, Status> {
    let user_id = authorize(request, Access::Write)?;
    Keyed::of(request, user_id, method)
}

/// The handlers: reads from the products (cached), writes through the writer.
#[derive(Debug, Clone)]
pub struct InventoryApi {
    products: Products,
    writes: Writes,
}

impl InventoryApi {
    pub fn new(products: Products, writes: Writes) -> Self {
        Self { products, writes }
    }

    /// Runs `write` ([`Writes::run`]) and answers once no replica's product cache answers as
    /// if it had not happened; a repeat of a keyed write waits too (its first attempt may have
    /// lost its answer before then). A task of its own, as [`service_kit::grpc::RunToEnd`]
    /// runs auth's calls: a caller that hangs up between the commit and the caches' drop must
    /// not leave this replica's copy standing.
    async fn write<R, F>(&self, keyed: Option<Keyed>, write: F) -> Result<Response<R>, Status>
    where
        R: prost::Message + Default + Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> Write<'c, R, InventoryError> + Send + 'static,
    {
        let (writes, products) = (self.writes.clone(), self.products.clone());
        let written = tokio::spawn(
            async move {
                let answer = writes.run(keyed, write).await;
                if answer.is_ok() {
                    products.written().await;
                }
                answer
            }
            .in_current_span(),
        );
        written
            .await
            .unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()))
    }

    /// The tonic service for these handlers; mount it behind
    /// [`crate::authentication::RequireAuthenticationLayer`].
    pub fn into_service(self) -> InventoryServiceServer<Self> {
        InventoryServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl InventoryService for InventoryApi {
    #[tracing::instrument(skip_all)]
    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let keyed = keyed(&request, "CreateProduct")?;
        let product = NewProduct::try_from(request.into_inner())?;
        self.write(keyed, move |connection| {
            Box::pin(async move {
                let created = ProductStore::create(connection, &product, SystemTime::now()).await?;
                tracing::info!(product_id = created.id, "product created");
                Ok::<_, InventoryError>(to_proto(created))
            })
        })
        .await
    }

    // The reads are the hot path: their spans are for debugging; the request's span is kept.
    #[tracing::instrument(level = "debug", skip_all, fields(product_id = request.get_ref().id))]
    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        authorize(&request, Access::Read)?;
        let product = self.products.get(request.get_ref().id).await?;
        Ok(Response::new(to_proto(product)))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit = request.get_ref().limit, offset = request.get_ref().offset))]
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        authorize(&request, Access::Read)?;
        let page = Page {
            limit: request
                .get_ref()
                .limit
                .map_or(MAX_PAGE_SIZE, |limit| limit.min(MAX_PAGE_SIZE)),
            offset: request.get_ref().offset,
        };
        let count = !request.get_ref().skip_total_count;
        let listed = self.products.list(page, count).await?;
        let read = listed.products.len();
        let products = within_reply_budget(listed.products.into_iter().map(to_proto));
        Ok(Response::new(pb::ListProductsResponse {
            more: listed.more || products.len() < read,
            products,
            total_count: listed.total.unwrap_or(0),
        }))
    }

    #[tracing::instrument(skip_all, fields(product_id = request.get_ref().id))]
    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let keyed = keyed(&request, "UpdateProduct")?;
        let id = request.get_ref().id;
        let changes = ProductChanges::try_from(request.into_inner())?;
        self.write(keyed, move |connection| {
            Box::pin(async move {
                ProductStore::update(connection, id, &changes, SystemTime::now())
                    .await
                    .map(to_proto)
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(product_id = request.get_ref().id))]
    async fn delete_product(
        &self,
        request: Request<pb::DeleteProductRequest>,
    ) -> Result<Response<pb::DeleteProductResponse>, Status> {
        let keyed = keyed(&request, "DeleteProduct")?;
        let id = request.get_ref().id;
        self.write(keyed, move |connection| {
            Box::pin(async move {
                ProductStore::delete(connection, id).await?;
                tracing::info!("product deleted");
                Ok::<_, InventoryError>(pb::DeleteProductResponse {})
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(product_id = request.get_ref().id, delta = request.get_ref().delta))]
    async fn adjust_stock(
        &self,
        request: Request<pb::AdjustStockRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let keyed = keyed(&request, "AdjustStock")?;
        let pb::AdjustStockRequest { id, delta } = request.into_inner();
        let delta = StockDelta::parse(delta)?;
        self.write(keyed, move |connection| {
            Box::pin(async move {
                ProductStore::adjust_stock(connection, id, delta, SystemTime::now())
                    .await
                    .map(to_proto)
            })
        })
        .await
    }
}

fn to_proto(product: Product) -> pb::Product {
    // Taken apart, so a stored field cannot be added without deciding how it is sent.
    let Product {
        id,
        name,
        description,
        price,
        quantity,
        created_at,
        updated_at,
    } = product;
    pb::Product {
        id,
        name,
        description,
        price: price.to_decimal(),
        quantity: quantity.value(),
        created_at: Some(created_at.into()),
        updated_at: Some(updated_at.into()),
    }
}

/// How many bytes of products one ListProducts reply carries at most: under the 4 MiB a tonic
/// client decodes by default, with room to spare. Products past it are left for the next call.
const REPLY_BUDGET_BYTES: usize = 3 * 1024 * 1024;

/// The leading products that fit the reply budget; always at least one, so that a caller
/// reading page by page always moves on.
fn within_reply_budget(products: impl Iterator<Item = pb::Product>) -> Vec<pb::Product> {
    let mut used = 0;
    let mut page = Vec::new();
    for product in products {
        used += product.encoded_len();
        if used > REPLY_BUDGET_BYTES && !page.is_empty() {
            break;
        }
        page.push(product);
    }
    page
}
