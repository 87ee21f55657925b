//! Where the services keep their data during a run: SQLite files in temporary folders by
//! default, or fresh PostgreSQL databases on the server an administrative URL names, each
//! dropped when the run is over (`service_kit::testing::TestDatabase`).

use service_kit::testing::TestDatabase;

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

/// One service's database for the run: dropped (or its file removed) when the run is over.
pub type Database = TestDatabase;

/// A new database for `purpose`: a SQLite file of its own, or a fresh PostgreSQL database.
pub async fn create(backend: &Backend, purpose: &str) -> Result<Database, String> {
    match backend {
        Backend::Sqlite => Ok(TestDatabase::sqlite()),
        Backend::Postgres { admin_url } => {
            TestDatabase::postgres_on(admin_url, &format!("bench_{purpose}")).await
        }
    }
}
