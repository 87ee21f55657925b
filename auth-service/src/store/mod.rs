//! All SQL of the service. One code path serves SQLite and PostgreSQL (sqlx `Any`, `$n`
//! placeholders, portable column types); only the migrations differ, chosen at connect time.

// First: its macros (the user columns) are for the modules declared after it.
#[macro_use]
mod user_row;
pub mod audit;
mod credentials;
mod import;
mod lockout;
mod outbox;
mod passwords;
mod recovery;
mod second_factor;
#[cfg(test)]
mod tests;
mod users;

use service_kit::{
    database::{self, Backend, DatabaseError, Migrations},
    idempotency::{self, Writes},
    validation::FieldErrors,
};
use sqlx::{AnyPool, migrate::Migrator};

use crate::error::AuthError;

pub use audit::{AuditFilter, StoredEvent};
pub use credentials::{CredentialLimit, NewCredential};
pub use passwords::UserLookup;
pub use recovery::ResetRefused;
pub use second_factor::Challenge;
pub use users::{NEEDS_AN_IDENTITY, NewUser, UserChanges};

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The pool's connections, reported at each scrape while the store lives.
    _observed: std::sync::Arc<service_kit::metrics::Collecting>,
}

impl Store {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, DatabaseError> {
        let pool = database::connect(
            url,
            Migrations {
                sqlite: &SQLITE,
                postgres: &POSTGRES,
                shared: &[(4, idempotency::CREATE_TABLE)],
            },
        )
        .await?;
        let backend = Backend::of_url(url).ok_or(DatabaseError::UnsupportedUrl)?;
        Ok(Self {
            _observed: std::sync::Arc::new(database::observe(&pool, "auth")),
            pool,
            backend,
        })
    }

    /// The pool, for a write outside any keyed transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Records an event that changes nothing else (a login refused while locked out).
    pub async fn record_event(&self, event: &crate::domain::audit::Event) -> Result<(), AuthError> {
        audit::record(&self.pool, event).await
    }

    /// The writer of the keyed writes, which keeps idempotency keys for `key_ttl`.
    pub fn writes(&self, key_ttl: std::time::Duration) -> Writes {
        Writes::new(self.pool.clone(), "auth", key_ttl)
    }
}

const DUPLICATE_USERNAME: &str = "A user with that username already exists.";
const DUPLICATE_EMAIL: &str = "A user with this email already exists.";

/// The field error for a broken unique constraint, if that is what `err` is. The constraint
/// names of the migrations decide the field; PostgreSQL reports them, SQLite reports the column,
/// and both contain the column name matched here.
fn duplicate_field(err: &sqlx::Error) -> Option<FieldErrors> {
    let constraint = database::unique_violation(err)?;
    if constraint.contains("username_key") {
        Some(FieldErrors::single("username", DUPLICATE_USERNAME))
    } else if constraint.contains("email_key") {
        Some(FieldErrors::single("email", DUPLICATE_EMAIL))
    } else {
        None
    }
}
