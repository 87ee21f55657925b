//! All SQL of the service: the `products` table, on SQLite or PostgreSQL. Prices are integer
//! cents and timestamps unix microseconds, the types both backends share. The hot reads (`get`,
//! `list`) run on [`Readers`], in the backend's own driver; writes run through sqlx's `Any`
//! driver on the connection [`service_kit::idempotency::Writes`] gives them, which for a keyed
//! write is the transaction that also records its key and answer; the import on the pool.

use std::time::{Duration, SystemTime};

use std::collections::HashMap;

use service_kit::{
    database::{self, Backend, DatabaseError, Migrations, Readers, on_backend},
    django::{RecordError, RecordRef},
    idempotency::Writes,
    time::UnixMicros,
};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::{
    domain::{NewProduct, Price, ProductChanges, Quantity, StockDelta},
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

const INSERT: &str = concat!(
    "INSERT INTO products (name, description, price_cents, quantity, created_at, updated_at) ",
    "VALUES ($1, $2, $3, $4, $5, $5) RETURNING ",
    product_columns!()
);

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

const SELECT_FIRST: &str = concat!(
    "SELECT ",
    product_columns!(),
    " FROM products ORDER BY id LIMIT $1"
);

const COUNT: &str = "SELECT COUNT(*) FROM products";

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
const ADJUST_STOCK: &str = concat!(
    "UPDATE products SET quantity = quantity + $1, updated_at = $2 ",
    "WHERE id = $3 AND quantity + $1 >= 0 AND quantity + $1 <= $4 RETURNING ",
    product_columns!()
);

const SELECT_QUANTITY: &str = "SELECT quantity FROM products WHERE id = $1";

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
}

impl ProductStore {
    /// Connects to `url` and applies the migrations of its backend.
    pub async fn connect(url: &str) -> Result<Self, DatabaseError> {
        let migrations = Migrations {
            sqlite: &SQLITE_MIGRATIONS,
            postgres: &POSTGRES_MIGRATIONS,
        };
        let pool = database::connect(url, migrations).await?;
        let backend = Backend::of_url(url).ok_or(DatabaseError::UnsupportedUrl)?;
        Ok(Self {
            readers: Readers::new(url)?,
            pool,
            backend,
        })
    }

    /// The writer of this database's writes, which keeps idempotency keys for `key_ttl`.
    pub fn writes(&self, key_ttl: Duration) -> Writes {
        Writes::new(self.pool.clone(), key_ttl)
    }

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
}

impl ProductStore {
    /// Every product in id order, if there are at most `max` (the product cache keeps no more).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn all(&self, max: usize) -> Result<Option<Vec<Product>>, InventoryError> {
        // One row past the bound tells that there are more, without counting.
        let limit = i64::try_from(max).unwrap_or(i64::MAX).saturating_add(1);
        let rows: Vec<ProductRow> = self
            .readers
            .read(|connection| {
                on_backend!(connection, |connection| Box::pin(
                    sqlx::query_as(SELECT_FIRST)
                        .bind(limit)
                        .fetch_all(connection)
                ))
            })
            .await?;
        if rows.len() > max {
            return Ok(None);
        }
        Ok(Some(rows.into_iter().map(Product::from).collect()))
    }
}

/// The writes, on the connection (or transaction) the caller runs them on.
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

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// [`ADJUST_STOCK`], and a keyed AdjustStock, in two transactions interleaved by hand, on
/// PostgreSQL. (SQLite lets one writer at a time hold the whole database, so two of its writes
/// never interleave.)
#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        },
        time::{Duration, SystemTime},
    };

    use service_kit::{idempotency::Keyed, testing::TestDatabase, time::UnixMicros};
    use sqlx::{AnyConnection, Connection, Row};
    use tokio::sync::oneshot;
    use tonic::{Code, Request, Response, Status};

    use super::{ADJUST_STOCK, Page, ProductStore};
    use crate::{
        domain::{NewProduct, Price, ProductName, Quantity, StockDelta},
        error::InventoryError,
    };

    /// A product with `quantity` in stock; its id.
    async fn product(store: &ProductStore, quantity: i64) -> i64 {
        let product = NewProduct {
            name: ProductName::parse(Some("Widget".to_owned())).unwrap(),
            description: String::new(),
            price: Price::parse("1.00").unwrap(),
            quantity: Quantity::parse(quantity).unwrap(),
        };
        let mut connection = store.pool.acquire().await.unwrap();
        ProductStore::create(&mut connection, &product, SystemTime::now())
            .await
            .unwrap()
            .id
    }

    /// The guarded UPDATE on `connection`: the new quantity, or `None` when the guard refused.
    async fn adjust(connection: &mut AnyConnection, id: i64, delta: i64) -> Option<i64> {
        sqlx::query(ADJUST_STOCK)
            .bind(delta)
            .bind(UnixMicros::now().0)
            .bind(id)
            .bind(Quantity::MAX)
            .fetch_optional(connection)
            .await
            .expect("the UPDATE runs")
            .map(|row| row.get("quantity"))
    }

    async fn begin(url: &str) -> AnyConnection {
        let mut connection = AnyConnection::connect(url).await.unwrap();
        sqlx::raw_sql("BEGIN")
            .execute(&mut connection)
            .await
            .unwrap();
        connection
    }

    async fn end(connection: &mut AnyConnection, statement: &'static str) {
        sqlx::raw_sql(statement).execute(connection).await.unwrap();
    }

    /// Waits (at most 10 s) until some session of this database waits for a row lock.
    async fn until_one_waits_for_a_lock(url: &str) {
        let mut observer = AnyConnection::connect(url).await.unwrap();
        for _ in 0..1000 {
            let waiting: i64 = sqlx::query(
                "SELECT COUNT(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut observer)
            .await
            .unwrap()
            .get(0);
            if waiting > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the second transaction never waited for the first");
    }

    /// One in stock, two transactions take one each: the second UPDATE waits for the first's
    /// row lock, then PostgreSQL re-checks its WHERE against the committed row (now 0), so the
    /// guard refuses it instead of selling stock that is gone. And when the first rolls back,
    /// the second sees the stock it left and takes it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interleaved_transactions_never_take_the_last_item_twice() {
        let Some(db) = TestDatabase::postgres().await else {
            return;
        };
        let store = ProductStore::connect(db.url()).await.unwrap();
        for (first_ends_with, second_gets, left) in [("COMMIT", None, 0), ("ROLLBACK", Some(0), 0)]
        {
            let id = product(&store, 1).await;
            let mut first = begin(db.url()).await;
            let mut second = begin(db.url()).await;
            assert_eq!(adjust(&mut first, id, -1).await, Some(0));
            let waiting = tokio::spawn(async move {
                let taken = adjust(&mut second, id, -1).await;
                end(&mut second, "COMMIT").await;
                taken
            });
            until_one_waits_for_a_lock(db.url()).await;
            end(&mut first, first_ends_with).await;
            assert_eq!(
                waiting.await.unwrap(),
                second_gets,
                "after the first's {first_ends_with}"
            );
            let stored = store.get(id).await.expect("the product");
            assert_eq!(stored.quantity.value(), left, "after {first_ends_with}");
        }
    }

    /// The database dropping every connection (as a restart does) costs no read and no write:
    /// a reader finding its connection broken reads again on a new one, and the pool checks a
    /// connection before it hands it out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_that_dropped_its_connections_costs_no_call() {
        let Some(db) = TestDatabase::postgres().await else {
            return;
        };
        let store = ProductStore::connect(db.url()).await.unwrap();
        let id = product(&store, 3).await;
        let first_page = Page {
            limit: 10,
            offset: 0,
        };
        store.get(id).await.expect("a reader is opened");
        store.list(first_page, true).await.expect("and lent again");

        let mut admin = AnyConnection::connect(db.url()).await.unwrap();
        let terminated: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(
            terminated.len() >= 2,
            "the readers and the pool: {terminated:?}"
        );

        let stored = store.get(id).await.expect("read on a new connection");
        assert_eq!(stored.quantity.value(), 3);
        let listed = store.list(first_page, true).await.expect("listed");
        assert_eq!((listed.products.len(), listed.total), (1, Some(1)));
        product(&store, 1).await;
    }

    /// AdjustStock +5 on `connection`: the new quantity (an `i64` is a message, Int64Value,
    /// which the idempotency store can keep).
    async fn add_five(connection: &mut AnyConnection, id: i64) -> Result<i64, InventoryError> {
        let delta = StockDelta::parse(5).unwrap();
        let product = ProductStore::adjust_stock(connection, id, delta, SystemTime::now()).await?;
        Ok(product.quantity.value())
    }

    fn keyed(key: &str, id: i64) -> Option<Keyed> {
        let mut request = Request::new(proto::inventory::v1::AdjustStockRequest { id, delta: 5 });
        request
            .metadata_mut()
            .insert(proto::idempotency::METADATA_KEY, key.parse().unwrap());
        Keyed::of(&request, 1, "AdjustStock").unwrap()
    }

    /// A duplicate that arrives while the first keyed write is in its transaction waits for
    /// it on the key (no polling): when the first commits, the duplicate gets its answer and
    /// never runs; when the first fails (the service's fault, so nothing is kept), the
    /// duplicate applies instead. Either way the stock moves once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_duplicate_waits_for_the_first_then_gets_its_answer_or_applies() {
        let Some(db) = TestDatabase::postgres().await else {
            return;
        };
        let store = ProductStore::connect(db.url()).await.unwrap();
        let writes = store.writes(Duration::from_secs(60));
        for (key, first_fails) in [("commits", false), ("fails", true)] {
            let id = product(&store, 0).await;
            let (applied, first_applied) = oneshot::channel::<()>();
            let (release, released) = oneshot::channel::<()>();
            let first = tokio::spawn({
                let (writes, keyed) = (writes.clone(), keyed(key, id));
                async move {
                    writes
                        .run(keyed, move |connection| {
                            Box::pin(async move {
                                let added = add_five(connection, id).await?;
                                applied.send(()).unwrap();
                                released.await.unwrap();
                                if first_fails {
                                    return Err(InventoryError::AuthUnavailable(
                                        Status::unavailable("gone"),
                                    ));
                                }
                                Ok(added)
                            })
                        })
                        .await
                }
            });
            first_applied.await.unwrap();
            let second_ran = Arc::new(AtomicBool::new(false));
            let second = tokio::spawn({
                let (writes, keyed, ran) = (writes.clone(), keyed(key, id), second_ran.clone());
                async move {
                    writes
                        .run(keyed, move |connection| {
                            Box::pin(async move {
                                ran.store(true, Ordering::SeqCst);
                                add_five(connection, id).await
                            })
                        })
                        .await
                }
            });
            until_one_waits_for_a_lock(db.url()).await;
            release.send(()).unwrap();
            let first = first.await.unwrap().map(Response::into_inner);
            let second = second
                .await
                .unwrap()
                .expect("the duplicate is answered")
                .into_inner();
            assert_eq!(second, 5, "{key}");
            if first_fails {
                assert_eq!(first.unwrap_err().code(), Code::Unavailable);
                assert!(second_ran.load(Ordering::SeqCst), "the duplicate applied");
            } else {
                assert_eq!(first.unwrap(), second, "the first's answer");
                assert!(
                    !second_ran.load(Ordering::SeqCst),
                    "the duplicate never ran"
                );
            }
            let stored = store.get(id).await.expect("the product");
            assert_eq!(stored.quantity.value(), 5, "moved once ({key})");
        }
    }

    /// A key is purged once expired, and not before; on both backends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_keys_are_purged() {
        let databases = [Some(TestDatabase::sqlite()), TestDatabase::postgres().await];
        for db in databases.into_iter().flatten() {
            let store = ProductStore::connect(db.url()).await.unwrap();
            let id = product(&store, 0).await;
            for (key, ttl) in [
                ("forgotten", Duration::ZERO),
                ("kept", Duration::from_secs(60)),
            ] {
                store
                    .writes(ttl)
                    .run(keyed(key, id), move |connection| {
                        Box::pin(add_five(connection, id))
                    })
                    .await
                    .unwrap();
            }
            let writes = store.writes(Duration::ZERO);
            assert_eq!(writes.purge_expired(SystemTime::now()).await.unwrap(), 1);
            assert_eq!(writes.purge_expired(SystemTime::now()).await.unwrap(), 0);
        }
    }
}
