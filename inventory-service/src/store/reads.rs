//! The reads: one product, a page of them, and the whole table for the product cache. They
//! run on [`Readers`](service_kit::database::Readers), in the backend's own driver.

use service_kit::database::on_backend;

use super::{Product, ProductRow, ProductStore, found};
use crate::error::InventoryError;

const SELECT_ONE: &str = concat!(
    "SELECT ",
    product_columns!(),
    " FROM products WHERE id = $1"
);

const SELECT_PAGE: &str = concat!(
    "SELECT ",
    product_columns!(),
    " FROM products ORDER BY id LIMIT $1 OFFSET $2"
);

const COUNT: &str = "SELECT COUNT(*) FROM products";

/// Which slice of the product list to read, in id order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// At most this many.
    pub limit: u64,
    pub offset: u64,
}

/// A page of products.
#[derive(Debug)]
pub struct Listed {
    pub products: Vec<Product>,
    /// How many there are in all, when asked.
    pub total: Option<u64>,
    /// Whether products follow the page.
    pub more: bool,
}

impl ProductStore {
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn get(&self, id: i64) -> Result<Product, InventoryError> {
        let row = self
            .readers
            .read(|connection| {
                on_backend!(connection, |connection| Box::pin(
                    sqlx::query_as(SELECT_ONE)
                        .bind(id)
                        .fetch_optional(connection)
                ))
            })
            .await?;
        found(row)
    }

    /// One page in id order, and whether more follow; with `count`, also how many products
    /// there are in all (a second query, which unpaged readers do without).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list(&self, page: Page, count: bool) -> Result<Listed, InventoryError> {
        let (products, more) = self.page(page).await?;
        let total = if count {
            let total: i64 = self
                .readers
                .read(|connection| {
                    on_backend!(connection, |connection| Box::pin(
                        sqlx::query_scalar(COUNT).fetch_one(connection)
                    ))
                })
                .await?;
            Some(u64::try_from(total).unwrap_or_default())
        } else {
            None
        };
        Ok(Listed {
            products,
            total,
            more,
        })
    }

    /// Every product in id order, if there are at most `max` (the product cache keeps no more).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn all(&self, max: usize) -> Result<Option<Vec<Product>>, InventoryError> {
        let first = Page {
            limit: u64::try_from(max).unwrap_or(u64::MAX),
            offset: 0,
        };
        let (products, more) = self.page(first).await?;
        Ok((!more).then_some(products))
    }

    /// The products of `page`, and whether more follow it.
    async fn page(&self, page: Page) -> Result<(Vec<Product>, bool), InventoryError> {
        // One row past the page tells whether more follow, without counting.
        let (limit, offset) = (
            saturating_i64(page.limit).saturating_add(1),
            saturating_i64(page.offset),
        );
        let rows: Vec<ProductRow> = self
            .readers
            .read(|connection| {
                on_backend!(connection, |connection| Box::pin(
                    sqlx::query_as(SELECT_PAGE)
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(connection)
                ))
            })
            .await?;
        let more = rows.len() as u64 > page.limit;
        let products = rows
            .into_iter()
            .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
            .map(Product::from)
            .collect();
        Ok((products, more))
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
