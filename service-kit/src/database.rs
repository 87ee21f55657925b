//! One connection pool for either backend. SQLite (the embedded default) and PostgreSQL are
//! served by the same SQL through sqlx's `Any` driver; the only things that differ, the
//! migrations and a few column types, are chosen here from the URL. The hot reads skip `Any`:
//! [`Readers`] lends connections of the backend's own driver, on which the same SQL runs
//! ([`on_backend!`]) without converting every row and column to `Any`'s form first.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{
    AnyPool, ConnectOptions, PgConnection, Row, SqliteConnection,
    any::{AnyPoolOptions, AnyRow},
    migrate::Migrator,
    postgres::PgConnectOptions,
    sqlite::SqliteConnectOptions,
};
use tokio::sync::Semaphore;

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

/// A database URL. It may carry a password, so its `Debug` (what a logged or printed
/// configuration shows) hides that part.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with the password of its user info, if any, replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
            return url.clone();
        };
        let authority_end = url[scheme_end..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |at| scheme_end + at);
        let authority = &url[scheme_end..authority_end];
        let Some(at) = authority.rfind('@') else {
            return url.clone();
        };
        match authority[..at].split_once(':') {
            Some((user, _password)) => format!(
                "{}{user}:***{}",
                &url[..scheme_end],
                &url[scheme_end + at..]
            ),
            None => url.clone(),
        }
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

/// A service's schema, once per backend (their SQL dialects differ in DDL only).
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
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
    let pool = AnyPoolOptions::new()
        // Fail fast when the database is gone: callers get UNAVAILABLE, not a hung request.
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .map_err(DatabaseError::Connect)?;
    let migrator = match backend {
        Backend::Sqlite => {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(DatabaseError::Connect)?;
            migrations.sqlite
        }
        Backend::Postgres => migrations.postgres,
    };
    migrator.run(&pool).await.map_err(DatabaseError::Migrate)?;
    Ok(pool)
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

/// A server's claim on its SQLite file (a lock on `<file>.lock`, released when the process
/// ends, however it ends). A cache is kept exact by its server hearing every write, and SQLite
/// cannot tell one process of another's writes: a server that keeps caches of the file claims
/// it alone; servers that keep none may share it with each other, not with one that does.
#[derive(Debug)]
pub struct SqliteClaim {
    _lock: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "another {program} serves the SQLite database {path}: a server that caches its data \
         must be the only one on the file (it could not tell the others of their writes); run \
         replicas on PostgreSQL, or turn the cache off on every server of the file"
    )]
    InUse { program: &'static str, path: String },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
}

/// Whether a claim is a caching server's, alone on the file, or one of several cacheless ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Caching,
    Cacheless,
}

impl SqliteClaim {
    /// Claims the SQLite file behind `url` for this process, `program`; `None` for PostgreSQL
    /// and in-memory SQLite, which need no claim.
    pub fn take(
        url: &str,
        program: &'static str,
        claim: Claim,
    ) -> Result<Option<Self>, ClaimError> {
        let Some(path) = sqlite_file(url) else {
            return Ok(None);
        };
        let lock = format!("{path}.lock");
        let failed = |source| ClaimError::Lock {
            path: lock.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(failed)?;
        let locked = match claim {
            Claim::Caching => file.try_lock(),
            Claim::Cacheless => file.try_lock_shared(),
        };
        match locked {
            Ok(()) => Ok(Some(Self { _lock: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(ClaimError::InUse {
                program,
                path: path.to_owned(),
            }),
            Err(std::fs::TryLockError::Error(err)) => Err(failed(err)),
        }
    }

    /// Whether a caching server holds the SQLite file behind `url` now: a console command
    /// writing beside it must then wait until its caches have seen the writes.
    pub fn held_by_a_cache(url: &str) -> bool {
        matches!(
            Self::take(url, "server", Claim::Cacheless),
            Err(ClaimError::InUse { .. })
        )
    }
}

/// The file of a SQLite URL (`sqlite://auth.db`, `sqlite:///abs/auth.db?mode=rwc`); `None`
/// for other URLs and in-memory databases.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

/// Whether anything committed to a SQLite database from another connection since the last
/// look (`PRAGMA data_version`, on a connection of its own): how a server's cache hears of the
/// writes made beside it, by a console command in another process or by its own pool.
#[derive(Debug)]
pub struct SqliteCommits {
    options: SqliteConnectOptions,
    connection: Option<SqliteConnection>,
    /// The version at the last look on `connection`.
    seen: Option<i64>,
}

impl SqliteCommits {
    /// Watches the SQLite database at `url`; `None` for another backend.
    pub fn watch(url: &str) -> Result<Option<Self>, DatabaseError> {
        let (backend, url) = creating(url)?;
        if backend != Backend::Sqlite {
            return Ok(None);
        }
        Ok(Some(Self {
            options: url.parse().map_err(DatabaseError::Connect)?,
            connection: None,
            seen: None,
        }))
    }

    /// Whether another connection committed since the last call (`true` on the first call,
    /// and after the connection had to be opened again: what happened meanwhile is unknown).
    pub async fn committed_since(&mut self) -> Result<bool, sqlx::Error> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => {
                self.seen = None;
                self.connection.insert(self.options.connect().await?)
            }
        };
        let version = sqlx::query_scalar::<_, i64>("PRAGMA data_version")
            .fetch_one(connection)
            .await;
        let version = match version {
            Ok(version) => version,
            Err(err) => {
                self.connection = None;
                return Err(err);
            }
        };
        Ok(self.seen.replace(version) != Some(version))
    }
}

/// How many connections [`Readers`] keeps open at most; a read beyond them waits for one.
const READERS: usize = 8;

/// How long a read waits for a connection before it fails (UNAVAILABLE), as the pool's own
/// `acquire_timeout`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// One read on a lent connection, as [`Readers::read`] runs it (as `idempotency::Write` is a
/// write).
pub type Read<'c, T> = Pin<Box<dyn Future<Output = Result<T, sqlx::Error>> + Send + 'c>>;

/// A connection of the backend's own driver, as [`Readers`] lends it. [`on_backend!`] runs one
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
pub use crate::on_backend;

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
/// run once more on a new one, so a restart costs no read. At most [`READERS`] are open.
#[derive(Debug, Clone)]
pub struct Readers {
    options: ReadOptions,
    idle: Arc<Mutex<Vec<ReadConnection>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Readers of the database at `url`, which [`connect`] has created and migrated; they open
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{DatabaseUrl, ReadConnection, Readers, sqlite_file};

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

    #[test]
    fn finds_the_file_of_a_sqlite_url() {
        assert_eq!(sqlite_file("sqlite://auth.db"), Some("auth.db"));
        assert_eq!(sqlite_file("sqlite:data/auth.db"), Some("data/auth.db"));
        assert_eq!(
            sqlite_file("sqlite:///tmp/a.db?mode=rwc"),
            Some("/tmp/a.db")
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/auth"), None);
    }

    #[test]
    fn debug_hides_the_password_only() {
        let cases = [
            (
                "postgres://app:s3cret@db.example.com:5432/auth?sslmode=require",
                "postgres://app:***@db.example.com:5432/auth?sslmode=require",
            ),
            ("postgres://app@db/auth", "postgres://app@db/auth"),
            ("postgres://u:p%40ss@h/d", "postgres://u:***@h/d"),
            ("sqlite://data/auth.db", "sqlite://data/auth.db"),
        ];
        for (url, shown) in cases {
            let url = DatabaseUrl::from(url);
            assert_eq!(url.redacted(), shown);
            assert_eq!(format!("{url:?}"), format!("DatabaseUrl({shown:?})"));
        }
    }
}
