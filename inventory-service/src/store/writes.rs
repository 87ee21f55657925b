//! The writes, on the connection (or transaction) the caller runs them on: for a keyed write,
//! the one that also records its key and answer.

use std::time::SystemTime;

use service_kit::time::UnixMicros;
use sqlx::{AnyConnection, Row};

use super::{Product, ProductRow, ProductStore, found};
use crate::{
    domain::{NewProduct, Price, ProductChanges, Quantity, StockDelta},
    error::InventoryError,
};

const INSERT: &str = concat!(
    "INSERT INTO products (name, description, price_cents, quantity, created_at, updated_at) ",
    "VALUES ($1, $2, $3, $4, $5, $5) RETURNING ",
    product_columns!()
);

/// One statement, so a partial update never interleaves with another writer.
const UPDATE: &str = concat!(
    "UPDATE products SET name = COALESCE($1, name), description = COALESCE($2, description), ",
    "price_cents = COALESCE($3, price_cents), quantity = COALESCE($4, quantity), updated_at = $5 ",
    "WHERE id = $6 RETURNING ",
    product_columns!()
);

const DELETE: &str = "DELETE FROM products WHERE id = $1";

/// The read, the check and the write in one statement: the row lock (PostgreSQL) or the
/// database write lock (SQLite) makes concurrent adjustments serialize, and the guard is
/// evaluated on the latest quantity, so no update is lost and stock never leaves its range.
pub(super) const ADJUST_STOCK: &str = concat!(
    "UPDATE products SET quantity = quantity + $1, updated_at = $2 ",
    "WHERE id = $3 AND quantity + $1 >= 0 AND quantity + $1 <= $4 RETURNING ",
    product_columns!()
);

const SELECT_QUANTITY: &str = "SELECT quantity FROM products WHERE id = $1";

impl ProductStore {
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create(
        connection: &mut AnyConnection,
        product: &NewProduct,
        now: SystemTime,
    ) -> Result<Product, InventoryError> {
        let row: ProductRow = sqlx::query_as(INSERT)
            .bind(product.name.as_str())
            .bind(product.description.as_str())
            .bind(product.price.cents())
            .bind(product.quantity.value())
            .bind(UnixMicros::from(now).0)
            .fetch_one(connection)
            .await?;
        Ok(row.into())
    }

    /// Applies the changes that are set.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn update(
        connection: &mut AnyConnection,
        id: i64,
        changes: &ProductChanges,
        now: SystemTime,
    ) -> Result<Product, InventoryError> {
        let row = sqlx::query_as(UPDATE)
            .bind(changes.name.as_ref().map(|name| name.as_str().to_owned()))
            .bind(changes.description.clone())
            .bind(changes.price.map(Price::cents))
            .bind(changes.quantity.map(Quantity::value))
            .bind(UnixMicros::from(now).0)
            .bind(id)
            .fetch_optional(connection)
            .await?;
        found(row)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete(connection: &mut AnyConnection, id: i64) -> Result<(), InventoryError> {
        let result = sqlx::query(DELETE).bind(id).execute(connection).await?;
        if result.rows_affected() == 0 {
            return Err(InventoryError::ProductNotFound);
        }
        Ok(())
    }

    /// Adds `delta` to the stock in one atomic statement, or changes nothing: insufficient stock
    /// below zero, an invalid delta above [`Quantity::MAX`].
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn adjust_stock(
        connection: &mut AnyConnection,
        id: i64,
        delta: StockDelta,
        now: SystemTime,
    ) -> Result<Product, InventoryError> {
        let row: Option<ProductRow> = sqlx::query_as(ADJUST_STOCK)
            .bind(delta.value())
            .bind(UnixMicros::from(now).0)
            .bind(id)
            .bind(Quantity::MAX)
            .fetch_optional(&mut *connection)
            .await?;
        if let Some(row) = row {
            return Ok(row.into());
        }
        // Only to explain the refusal: the decision was the guarded UPDATE's.
        let current: Option<i64> = sqlx::query(SELECT_QUANTITY)
            .bind(id)
            .fetch_optional(connection)
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
        Err(match current {
            None => InventoryError::ProductNotFound,
            Some(quantity) if quantity + delta.value() < 0 => InventoryError::InsufficientStock,
            Some(quantity) => InventoryError::Invalid(StockDelta::exceeds_capacity(
                Quantity::from_stored(quantity),
            )),
        })
    }
}
