//! All SQL of the service: the `products` table, on SQLite or PostgreSQL. Prices are integer
//! cents and timestamps unix microseconds, the types both backends share. The hot reads (`get`,
//! `list`) run on [`Readers`], in the backend's own driver; writes run through sqlx's `Any`
//! driver on the connection [`service_kit::idempotency::Writes`] gives them, which for a keyed
//! write is the transaction that also records its key and answer; the import on the pool.
//!
//! This file: the store, its connection and migrations, and the row every query returns.
//!
//! - `reads`: one product, a page, the whole table (the cache's copy), on the readers.
//! - `writes`: create, update, delete and the stock adjustment, on the caller's connection.
//! - `import`: products with the ids they had elsewhere, in one transaction on the pool.

use std::time::{Duration, SystemTime};

use service_kit::{
    database::{self, Backend, DatabaseError, Migrations, Readers},
    idempotency::{self, Writes},
    time::UnixMicros,
};
use sqlx::AnyPool;

use crate::{
    domain::{Price, Quantity},
    error::InventoryError,
};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The columns every query returns, [`ProductRow`]'s fields.
/// A macro, not a const, because `concat!` (all `sqlx::query` accepts is `&'static str`) takes
/// literals only.
macro_rules! product_columns {
    () => {
        "id, name, description, price_cents, quantity, created_at, updated_at"
    };
}

mod import;
mod reads;
#[cfg(test)]
mod tests;
mod writes;

pub use self::{
    import::{ImportRefused, ImportReport, ImportedProduct},
    reads::{Listed, Page},
};

/// A stored product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: i64,
    /// Stored only after validation as a [`crate::domain::ProductName`]; kept as text here.
    pub name: String,
    pub description: String,
    pub price: Price,
    pub quantity: Quantity,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// The product table behind a pool. Cheap to clone. Its methods answer in the service's own
/// error, so a missing product is [`InventoryError::ProductNotFound`] wherever it is found
/// missing. Its spans carry no fields: the handler's span around each one already names the
/// product.
#[derive(Debug, Clone)]
pub struct ProductStore {
    pool: AnyPool,
    /// The connections of `get` and `list`, the hot path.
    readers: Readers,
    backend: Backend,
    /// The pool's connections, reported at each scrape while the store lives.
    _observed: std::sync::Arc<service_kit::metrics::Collecting>,
}

impl ProductStore {
    /// Connects to `url` and applies the migrations of its backend.
    pub async fn connect(url: &str) -> Result<Self, DatabaseError> {
        let migrations = Migrations {
            sqlite: &SQLITE_MIGRATIONS,
            postgres: &POSTGRES_MIGRATIONS,
            shared: &[(2, idempotency::CREATE_TABLE)],
        };
        let pool = database::connect(url, migrations).await?;
        let backend = Backend::of_url(url).ok_or(DatabaseError::UnsupportedUrl)?;
        Ok(Self {
            readers: Readers::new(url)?,
            _observed: std::sync::Arc::new(database::observe(&pool, "inventory")),
            pool,
            backend,
        })
    }

    /// The writer of this database's writes, which keeps idempotency keys for `key_ttl`.
    pub fn writes(&self, key_ttl: Duration) -> Writes {
        Writes::new(self.pool.clone(), "inventory", key_ttl)
    }
}

/// A product as stored, read by column name from either backend's rows (and `Any`'s).
#[derive(sqlx::FromRow)]
struct ProductRow {
    id: i64,
    name: String,
    description: String,
    price_cents: i64,
    quantity: i64,
    created_at: i64,
    updated_at: i64,
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Self {
        let ProductRow {
            id,
            name,
            description,
            price_cents,
            quantity,
            created_at,
            updated_at,
        } = row;
        Self {
            id,
            name,
            description,
            price: Price::from_cents(price_cents),
            quantity: Quantity::from_stored(quantity),
            created_at: UnixMicros(created_at).to_system_time(),
            updated_at: UnixMicros(updated_at).to_system_time(),
        }
    }
}

/// The product in `row`, if the statement found one.
fn found(row: Option<ProductRow>) -> Result<Product, InventoryError> {
    Ok(row.ok_or(InventoryError::ProductNotFound)?.into())
}
