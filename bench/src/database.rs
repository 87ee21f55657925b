//! Where the services keep their data during a run: SQLite files in the run's temporary folder
//! by default, or fresh PostgreSQL databases on the server an administrative URL names, each
//! dropped when the run is over.

use std::{
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use sqlx::{Connection, PgConnection};

/// The variables naming an administrative PostgreSQL URL, the first one set wins.
pub const POSTGRES_URL_VARS: [&str; 2] = ["BENCH_POSTGRES_URL", "TEST_POSTGRES_URL"];

/// The backend of one run.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

impl Backend {
    pub fn from_env() -> Self {
        POSTGRES_URL_VARS
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
            .map_or(Self::Sqlite, |admin_url| Self::Postgres { admin_url })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres { .. } => "PostgreSQL",
        }
    }
}

/// One service's database for the run.
#[derive(Debug)]
pub struct Database {
    url: String,
    /// On PostgreSQL: the administrative URL and the database to drop at the end.
    drop: Option<(String, String)>,
}

impl Database {
    /// A new database called after `purpose`: a file in `dir`, or a fresh PostgreSQL database.
    pub async fn create(backend: &Backend, dir: &Path, purpose: &str) -> Result<Self, String> {
        match backend {
            Backend::Sqlite => Ok(Self {
                url: format!("sqlite://{}", dir.join(format!("{purpose}.db")).display()),
                drop: None,
            }),
            Backend::Postgres { admin_url } => {
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| since.subsec_nanos());
                let name = format!("bench_{}_{nanos:x}_{purpose}", std::process::id());
                let mut admin = PgConnection::connect(admin_url)
                    .await
                    .map_err(|e| format!("the PostgreSQL URL does not connect: {e}"))?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
                Ok(Self {
                    url: replace_database(admin_url, &name),
                    drop: Some((admin_url.clone(), name)),
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.drop.take() else {
            return;
        };
        let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        // Drop cannot await, nor block the runtime it runs on: a thread with its own runtime
        // does the async clean-up.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(sqlx::Error::Io)?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut admin)
                    .await?;
                Ok::<_, sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the benchmark database {name}");
        }
    }
}

/// `admin_url` with its database path replaced by `name` (the query string kept).
fn replace_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_end..]
        .find('/')
        .map_or(base.len(), |i| authority_end + i);
    let mut url = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn replaces_the_database_and_keeps_the_query() {
        assert_eq!(
            replace_database("postgres://u@h:5432/postgres?sslmode=disable", "b1"),
            "postgres://u@h:5432/b1?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://u@h", "b2"),
            "postgres://u@h/b2"
        );
    }
}
