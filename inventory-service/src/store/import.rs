//! The import: products with the ids (and times) they had in another system, written in one
//! transaction on the pool.

use std::{collections::HashMap, time::SystemTime};

use service_kit::{
    database::Backend,
    django::{RecordError, RecordRef},
    time::UnixMicros,
};
use sqlx::Row;

use super::ProductStore;
use crate::domain::NewProduct;

const EXISTING_NAMES: &str = "SELECT id, name FROM products";

const INSERT_IMPORTED: &str = "INSERT INTO products (id, name, description, price_cents, \
                               quantity, created_at, updated_at) \
                               VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// PostgreSQL's identity does not move past ids inserted explicitly (SQLite's AUTOINCREMENT
/// does): without this the next CreateProduct would get an imported product's id.
const ADVANCE_POSTGRES_IDS: &str = "SELECT setval(pg_get_serial_sequence('products', 'id'), \
                                    GREATEST((SELECT MAX(id) FROM products), 1), \
                                    (SELECT MAX(id) FROM products) IS NOT NULL)";

/// A product of another system's (a Django dump's), checked as CreateProduct checks one, to
/// be written with the id and times it had there.
#[derive(Debug)]
pub struct ImportedProduct {
    /// The record it came from, named when it is refused.
    pub source: RecordRef,
    /// Django's id, kept.
    pub id: i64,
    pub product: NewProduct,
    /// The model's own `created_at` / `updated_at`, where it has them.
    pub created_at: Option<SystemTime>,
    pub updated_at: Option<SystemTime>,
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: usize,
    /// Products already here: the same id with the same name.
    pub skipped: usize,
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportRefused {
    /// A product's id is held here by another product.
    #[error(transparent)]
    IdHeld(#[from] RecordError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ProductStore {
    /// Writes imported products with their ids, in one transaction: a product already here
    /// (same id, same name) is skipped, an id held by another product refuses the import.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn import(
        &self,
        products: &[ImportedProduct],
        now: SystemTime,
    ) -> Result<ImportReport, ImportRefused> {
        let mut tx = self.pool.begin().await?;
        let mut names: HashMap<i64, String> = sqlx::query(EXISTING_NAMES)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("name")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let mut report = ImportReport::default();
        for imported in products {
            let name = imported.product.name.as_str();
            match names.get(&imported.id) {
                Some(held) if held == name => {
                    report.skipped += 1;
                    continue;
                }
                Some(held) => {
                    return Err(RecordError::new(
                        &imported.source,
                        "pk",
                        format!("id {} is held by product {held:?} here", imported.id),
                    )
                    .into());
                }
                None => {}
            }
            let created_at = imported.created_at.unwrap_or(now);
            sqlx::query(INSERT_IMPORTED)
                .bind(imported.id)
                .bind(name)
                .bind(imported.product.description.as_str())
                .bind(imported.product.price.cents())
                .bind(imported.product.quantity.value())
                .bind(UnixMicros::from(created_at).0)
                .bind(UnixMicros::from(imported.updated_at.unwrap_or(created_at)).0)
                .execute(&mut *tx)
                .await?;
            names.insert(imported.id, name.to_owned());
            report.imported += 1;
        }
        if self.backend == Backend::Postgres && report.imported > 0 {
            sqlx::query(ADVANCE_POSTGRES_IDS).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(report)
    }
}
