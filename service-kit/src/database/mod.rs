//! One connection pool for either backend. SQLite (the embedded default) and PostgreSQL are
//! served by the same SQL through sqlx's `Any` driver; the only things that differ, the
//! migrations and a few column types, are chosen here from the URL. The hot reads skip `Any`:
//! [`Readers`] lends connections of the backend's own driver, on which the same SQL runs
//! ([`on_backend!`]) without converting every row and column to `Any`'s form first.
//!
//! - `url`: [`DatabaseUrl`], which keeps a password out of logs.
//! - `migrations`: each service's schema, with the migrations of service-kit's tables spliced in.
//! - `sqlite`: the claim on a SQLite file, and hearing the commits made to it.
//! - `readers`: [`Readers`] and [`on_backend!`], the hot reads' connections.
//! - `group`: [`GroupCommit`], SQLite's writes queued for its one writer and committed in
//!   batches.

mod group;
mod migrations;
mod readers;
mod sqlite;
mod url;

use std::time::Duration;

use sqlx::{
    AnyPool, Row,
    any::{AnyPoolOptions, AnyRow},
};

pub use crate::on_backend;
pub(crate) use group::{BATCH_BUCKETS, BATCH_SIZE};
pub use group::{Committed, GroupCommit, Keep, Running};
pub use migrations::{Migrations, SharedMigration};
pub use readers::{Read, ReadConnection, Readers};
pub use sqlite::{Claim, ClaimError, SqliteClaim, SqliteCommits};
pub use url::DatabaseUrl;

/// The database behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Opens a pool on `url` and brings the schema up to date. A SQLite file is created when
/// missing (`mode=rwc`) and switched to WAL so readers never wait for the writer.
pub async fn connect(url: &str, migrations: Migrations) -> Result<AnyPool, DatabaseError> {
    sqlx::any::install_default_drivers();
    let (backend, url) = creating(url)?;
    let mut options = AnyPoolOptions::new()
        // Fail fast when the database is gone: callers get UNAVAILABLE, not a hung request.
        .acquire_timeout(Duration::from_secs(5));
    if backend == Backend::Sqlite {
        // SQLite takes one writer at a time. With several connections, concurrent writers
        // raced for its lock and the losers slept in its busy handler (a p99 near a second
        // at 32 writers: issue 25); with one, they wait in the pool's queue, in order, and
        // each is woken as the one before it ends. The hot reads have connections of their
        // own ([`Readers`]).
        options = options.max_connections(1);
    }
    let pool = options
        .connect(&url)
        .await
        .map_err(DatabaseError::Connect)?;
    if backend == Backend::Sqlite {
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&pool)
            .await
            .map_err(DatabaseError::Connect)?;
    }
    migrations
        .for_backend(backend)
        .run(&pool)
        .await
        .map_err(DatabaseError::Migrate)?;
    Ok(pool)
}

/// How long a write waited for a connection of its pool (on SQLite, the one writer's queue).
pub(crate) const ACQUIRE_SECONDS: &str = "db_pool_acquire_seconds";

/// The help texts of the database's series, given when the recorder is installed.
pub(crate) fn describe() {
    metrics::describe_histogram!(
        ACQUIRE_SECONDS,
        metrics::Unit::Seconds,
        "How long writes waited for a connection of the pool (its BEGIN included)."
    );
    metrics::describe_histogram!(
        BATCH_SIZE,
        "How many writes each commit took (SQLite, whose writes commit in batches)."
    );
    metrics::describe_gauge!(
        "db_pool_connections",
        "Open database connections, by state."
    );
    metrics::describe_gauge!(
        "db_pool_max_connections",
        "The most connections the pool opens."
    );
    metrics::describe_counter!(
        "db_query_errors_total",
        "Queries that failed, by pool and kind (unavailable: the database was not reached)."
    );
}

/// Counts a query that failed as `db_query_errors_total{pool, kind}`: `unavailable` (the
/// database could not be reached, see [`is_unavailable`]) or `other`.
pub fn count_error(pool: &'static str, err: &sqlx::Error) {
    let kind = if is_unavailable(err) {
        "unavailable"
    } else {
        "other"
    };
    metrics::counter!("db_query_errors_total", "pool" => pool, "kind" => kind).increment(1);
}

/// Reports `pool`'s connections at each scrape, as `db_pool_connections{pool, state}` (`idle`,
/// `in_use`) and `db_pool_max_connections{pool}`, while the guard lives (the store keeps it).
pub fn observe(pool: &AnyPool, name: &'static str) -> crate::metrics::Collecting {
    let pool = pool.clone();
    crate::metrics::on_scrape(move || {
        let (open, idle) = (pool.size(), pool.num_idle());
        let in_use = usize::try_from(open)
            .unwrap_or(usize::MAX)
            .saturating_sub(idle);
        #[expect(clippy::cast_precision_loss, reason = "a pool's few connections")]
        let gauge = |state, count: usize| {
            metrics::gauge!("db_pool_connections", "pool" => name, "state" => state)
                .set(count as f64);
        };
        gauge("idle", idle);
        gauge("in_use", in_use);
        metrics::gauge!("db_pool_max_connections", "pool" => name)
            .set(f64::from(pool.options().get_max_connections()));
    })
}

/// The backend of `url`, and `url` with SQLite's `mode=rwc` (create the file when missing)
/// unless it names a mode.
fn creating(url: &str) -> Result<(Backend, String), DatabaseError> {
    let backend = Backend::of_url(url).ok_or(DatabaseError::UnsupportedUrl)?;
    let url = match backend {
        Backend::Sqlite if !url.contains("mode=") => {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}mode=rwc")
        }
        _ => url.to_owned(),
    };
    Ok((backend, url))
}

/// Reads a boolean column: PostgreSQL has BOOLEAN, SQLite stores 0 or 1.
pub fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    row.try_get::<bool, _>(column)
        .or_else(|_| row.try_get::<i64, _>(column).map(|value| value != 0))
}

/// The name of the unique constraint a write broke, if that is what failed. PostgreSQL names
/// the constraint; SQLite names the column (`table.column`), so callers match on a name that
/// both contain.
pub fn unique_violation(err: &sqlx::Error) -> Option<String> {
    let db = err.as_database_error()?;
    if db.kind() != sqlx::error::ErrorKind::UniqueViolation {
        return None;
    }
    Some(
        db.constraint()
            .map(str::to_owned)
            .unwrap_or_else(|| db.message().to_owned()),
    )
}

/// Whether the error means the database could not be reached (as opposed to a bad query).
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        // PostgreSQL's connection exceptions (08…), operator intervention (57P…: the server
        // shutting down or restarting, a terminated backend), too many connections (53300),
        // and a database that takes none (55000, `ALLOW_CONNECTIONS false`).
        sqlx::Error::Database(err) => err.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "55000"
        }),
        _ => false,
    }
}

/// A SQLite file of its own for a unit test, with service-kit's `shared` tables and no
/// service's; its folder is removed when it is dropped.
#[cfg(test)]
pub(crate) struct TestSqlite {
    pub(crate) pool: AnyPool,
    folder: std::path::PathBuf,
}

#[cfg(test)]
impl TestSqlite {
    /// `name` tells the tests' files apart.
    pub(crate) async fn new(name: &str, shared: &'static [(i64, SharedMigration)]) -> Self {
        static NONE: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;
        let folder = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let url = format!("sqlite://{}", folder.join("test.db").display());
        let migrations = Migrations {
            sqlite: &NONE,
            postgres: &NONE,
            shared,
        };
        let pool = connect(&url, migrations).await.unwrap();
        Self { pool, folder }
    }
}

#[cfg(test)]
impl Drop for TestSqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second writer waits in the pool's queue for the one connection, not in SQLite's
    /// sleeping busy handler on a connection of its own.
    #[tokio::test]
    async fn sqlite_writers_queue_for_one_connection() {
        let db = TestSqlite::new("writers", &[]).await;
        let pool = db.pool.clone();
        let mut writing = pool.begin().await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER)")
            .execute(&mut *writing)
            .await
            .unwrap();
        // Without the one-connection pool a second connection opens in a few milliseconds.
        let second = tokio::time::timeout(Duration::from_millis(500), pool.acquire()).await;
        assert!(
            second.is_err(),
            "a second connection was lent while a write was open"
        );
        writing.commit().await.unwrap();
        // The connection goes back to the pool once the write ends.
        pool.acquire().await.expect("the connection is lent again");
        pool.close().await;
    }
}
