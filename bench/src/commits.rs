//! The database's own write limit: one-statement transactions (autocommit) in a closed loop on
//! a fresh database of the run's backend, through sqlx's `Any` pool as the services write. On
//! SQLite the file is in WAL mode as service-kit sets it, with the `synchronous` setting the
//! services get (they set none: SQLite's default, read back and printed), on one connection,
//! since SQLite has one writer at a time whatever the connections; on PostgreSQL on 1 and on
//! 32 connections.

use sqlx::{AnyPool, any::AnyPoolOptions};

use crate::{
    database::{self, Backend},
    load::{self, ROUND, Rpc, Summary, WARMUP},
};

/// One hot row, updated again and again (as `adjust-stock` of one product).
const UPDATE: &str = "UPDATE bench_hot SET quantity = quantity + 1 WHERE id = 1";
/// A new row each time (as a product's creation).
const INSERT: &str = "INSERT INTO bench_rows (name, quantity) VALUES ('Widget', 1)";
const SCHEMA: [&str; 3] = [
    "CREATE TABLE bench_hot (id BIGINT PRIMARY KEY, quantity BIGINT NOT NULL)",
    "CREATE TABLE bench_rows (name TEXT NOT NULL, quantity BIGINT NOT NULL)",
    "INSERT INTO bench_hot (id, quantity) VALUES (1, 0)",
];

/// The commit rates of [`UPDATE`] and [`INSERT`] on `connections` connections.
#[derive(Debug, Clone, Copy)]
pub struct Commits {
    pub update: Summary,
    pub insert: Summary,
}

/// The commit rates on 1 connection and on `many`, and a word on the setting measured.
pub async fn measure(backend: &Backend, many: usize) -> Result<(Commits, Commits, String), String> {
    let database = database::create(backend, "commits").await?;
    sqlx::any::install_default_drivers();
    let url = match backend {
        Backend::Sqlite => format!("{}?mode=rwc", database.url()),
        Backend::Postgres { .. } => database.url().to_owned(),
    };
    let pool = AnyPoolOptions::new()
        .max_connections(u32::try_from(many).unwrap_or(32))
        .connect(&url)
        .await
        .map_err(|e| format!("the commit baseline's database: {e}"))?;
    let setting = match backend {
        Backend::Sqlite => {
            execute(&pool, "PRAGMA journal_mode = WAL").await?;
            let (synchronous,): (i64,) = sqlx::query_as("PRAGMA synchronous")
                .fetch_one(&pool)
                .await
                .map_err(|e| e.to_string())?;
            let name = ["OFF", "NORMAL", "FULL", "EXTRA"]
                .get(usize::try_from(synchronous).unwrap_or(9))
                .unwrap_or(&"?");
            format!("SQLite WAL, synchronous={name}, one writer")
        }
        Backend::Postgres { .. } => {
            let (commit,): (String,) = sqlx::query_as("SHOW synchronous_commit")
                .fetch_one(&pool)
                .await
                .map_err(|e| e.to_string())?;
            format!("PostgreSQL, synchronous_commit={commit}")
        }
    };
    for statement in SCHEMA {
        execute(&pool, statement).await?;
    }
    let one = Commits {
        update: closed(&pool, UPDATE, 1).await,
        insert: closed(&pool, INSERT, 1).await,
    };
    let many = match backend {
        Backend::Sqlite => one,
        Backend::Postgres { .. } => Commits {
            update: closed(&pool, UPDATE, many).await,
            insert: closed(&pool, INSERT, many).await,
        },
    };
    pool.close().await;
    Ok((one, many, setting))
}

async fn execute(pool: &AnyPool, statement: &str) -> Result<(), String> {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| format!("{statement}: {e}"))
}

/// `statement` on `connections` connections at once, each committing again as soon as done.
async fn closed(pool: &AnyPool, statement: &'static str, connections: usize) -> Summary {
    let callers = (0..connections)
        .map(|_| {
            let pool = pool.clone();
            Rpc::new(move || {
                let pool = pool.clone();
                async move { sqlx::query(statement).execute(&pool).await.is_ok() }
            })
        })
        .collect();
    load::closed(callers, WARMUP, ROUND).await.1.summary()
}
