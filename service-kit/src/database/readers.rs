//! [`Readers`]: connections of the backend's own driver, lent to the hot reads, and
//! [`on_backend!`], which runs one piece of SQL on either backend's connection.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{
    ConnectOptions, PgConnection, SqliteConnection, postgres::PgConnectOptions,
    sqlite::SqliteConnectOptions,
};
use tokio::sync::Semaphore;

use super::{Backend, DatabaseError, creating, is_unavailable};

/// How many connections [`Readers`] keeps open at most; a read beyond them waits for one.
const READERS: usize = 8;

/// How long a read waits for a connection before it fails (UNAVAILABLE), as the pool's own
/// `acquire_timeout`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// One read on a lent connection, as [`Readers::read`] runs it (as `idempotency::Write` is a
/// write).
pub type Read<'c, T> = Pin<Box<dyn Future<Output = Result<T, sqlx::Error>> + Send + 'c>>;

/// A connection of the backend's own driver, as [`Readers`] lends it. [`on_backend!`](crate::on_backend!) runs one
/// piece of SQL on either.
#[derive(Debug)]
pub enum ReadConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs `$read` with `$connection` bound to the `&mut` typed connection inside a
/// [`ReadConnection`], whichever backend it is: the SQL is written once and checked against
/// both drivers.
#[macro_export]
macro_rules! on_backend {
    ($read_connection:expr, |$connection:ident| $read:expr) => {
        match $read_connection {
            $crate::database::ReadConnection::Sqlite($connection) => $read,
            $crate::database::ReadConnection::Postgres($connection) => $read,
        }
    };
}

/// How [`Readers`] opens a connection.
#[derive(Debug, Clone)]
enum ReadOptions {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

impl ReadOptions {
    async fn connect(&self) -> Result<ReadConnection, sqlx::Error> {
        let opening = async {
            Ok(match self {
                Self::Sqlite(options) => ReadConnection::Sqlite(options.connect().await?),
                Self::Postgres(options) => ReadConnection::Postgres(options.connect().await?),
            })
        };
        tokio::time::timeout(ACQUIRE_TIMEOUT, opening)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }
}

/// Connections lent to the hot reads, kept outside sqlx's pool and its `Any` driver. The pool
/// pings every connection it hands out and every one it takes back, and for SQLite each ping
/// is a hand-off to the connection's worker thread and back, as costly as a small read (for
/// PostgreSQL, a round trip): two pings per read. A read needs neither. And `Any` copies every
/// row it reads into its own form, column names included, before the caller decodes it: on a
/// page of products, most of the reading service's allocations. One read that fails, or is
/// dropped half-way, does not give its connection back, so the one lent next is one whose last
/// read completed; and one that finds its connection broken (the database restarted since) is
/// run once more on a new one, so a restart costs no read. At most `READERS` are open.
#[derive(Debug, Clone)]
pub struct Readers {
    options: ReadOptions,
    idle: Arc<Mutex<Vec<ReadConnection>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Readers of the database at `url`, which [`connect`](super::connect) has created and migrated; they open
    /// their connections when first used.
    pub fn new(url: &str) -> Result<Self, DatabaseError> {
        let (backend, url) = creating(url)?;
        let options = match backend {
            Backend::Sqlite => ReadOptions::Sqlite(url.parse().map_err(DatabaseError::Connect)?),
            Backend::Postgres => {
                ReadOptions::Postgres(url.parse().map_err(DatabaseError::Connect)?)
            }
        };
        Ok(Self {
            options,
            idle: Arc::default(),
            permits: Arc::new(Semaphore::new(READERS)),
        })
    }

    /// Runs `read` on a connection of its own (twice if the first connection was broken: a
    /// read is safe to repeat).
    pub async fn read<T, F>(&self, read: F) -> Result<T, sqlx::Error>
    where
        F: for<'c> Fn(&'c mut ReadConnection) -> Read<'c, T>,
    {
        let _permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.lock_idle().pop();
        let reused = match idle {
            Some(mut connection) => match read(&mut connection).await {
                Err(err) if is_unavailable(&err) => {
                    tracing::debug!(%err, "a reader's connection broke; reading on a new one");
                    None
                }
                answer => Some((connection, answer)),
            },
            None => None,
        };
        let (connection, answer) = match reused {
            Some(reused) => reused,
            None => {
                let mut connection = self.options.connect().await?;
                let answer = read(&mut connection).await;
                (connection, answer)
            }
        };
        let answer = answer?;
        self.lock_idle().push(connection);
        Ok(answer)
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<ReadConnection>> {
        // Push and pop are whole, so a panic elsewhere cannot leave the list half-changed.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{ReadConnection, Readers};

    #[tokio::test]
    async fn readers_lend_again_only_connections_whose_read_completed() {
        let readers = Readers::new("sqlite::memory:").unwrap();
        fn select_one(connection: &mut ReadConnection) -> super::Read<'_, i64> {
            on_backend!(connection, |connection| Box::pin(
                sqlx::query_scalar("SELECT 1").fetch_one(connection)
            ))
        }
        assert_eq!(readers.read(select_one).await.unwrap(), 1);
        assert_eq!(
            readers.lock_idle().len(),
            1,
            "a completed read gives it back"
        );

        let failed = readers
            .read(|connection| {
                on_backend!(connection, |connection| Box::pin(
                    sqlx::query_scalar::<_, i64>("SELECT * FROM nowhere").fetch_one(connection)
                ))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(readers.lock_idle().len(), 0, "a failed read does not");

        let abandoned = readers.read(|connection| {
            Box::pin(async move {
                on_backend!(connection, |connection| sqlx::query("SELECT 1")
                    .execute(connection)
                    .await
                    .map(drop))?;
                std::future::pending::<Result<(), sqlx::Error>>().await
            })
        });
        tokio::time::timeout(Duration::from_millis(50), abandoned)
            .await
            .expect_err("it never ends");
        assert_eq!(
            readers.lock_idle().len(),
            0,
            "nor does a read dropped half-way"
        );
        assert_eq!(
            readers.read(select_one).await.unwrap(),
            1,
            "a new one is opened"
        );
    }
}
