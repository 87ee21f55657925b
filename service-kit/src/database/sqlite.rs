//! What a SQLite file needs that a server on PostgreSQL does not: a claim on the file for a
//! server that caches its data ([`SqliteClaim`]), and hearing the commits other connections make
//! to it ([`SqliteCommits`]).

use sqlx::{ConnectOptions, SqliteConnection, sqlite::SqliteConnectOptions};

use super::{Backend, DatabaseError, creating};

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

#[cfg(test)]
mod tests {
    use super::sqlite_file;

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
}
