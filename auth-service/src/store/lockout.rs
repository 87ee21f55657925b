//! The `login_failures` table: failed attempts counted by scope (an account, or an unknown name,
//! alone or with one client address), each claimed with a compare-and-set so that concurrent
//! attempts each get a distinct count.

use sqlx::Row;

use super::{Store, audit};
use crate::{clock::UnixMicros, domain::audit::Event, error::AuthError};

const SELECT: &str = "SELECT failures, locked_until FROM login_failures WHERE scope = $1";
/// One more failure, only if nobody counted since `failures` was read ($5; 0 when no row).
const CLAIM: &str = "INSERT INTO login_failures (scope, failures, locked_until, updated_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (scope) DO UPDATE SET failures = $2, locked_until = $3, \
                     updated_at = $4 WHERE login_failures.failures = $5";
const LATEST_LOCK: &str =
    "SELECT MAX(locked_until) FROM login_failures WHERE scope IN ($1, $2, $3)";
const CLEAR: &str = "DELETE FROM login_failures WHERE scope IN ($1, $2, $3)";
const PURGE: &str = "DELETE FROM login_failures WHERE updated_at < $1 \
                     AND (locked_until IS NULL OR locked_until < $1)";

/// The failures counted in one scope so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCount {
    pub failures: i64,
    pub locked_until: Option<UnixMicros>,
}

impl Store {
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn failures(&self, scope: &str) -> Result<FailureCount, AuthError> {
        let row = sqlx::query(SELECT)
            .bind(scope.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(FailureCount::default());
        };
        Ok(FailureCount {
            failures: row.try_get("failures")?,
            locked_until: row
                .try_get::<Option<i64>, _>("locked_until")?
                .map(UnixMicros),
        })
    }

    /// Counts one more failure over `seen` (locking until `locked_until`), recording `event`
    /// with it; false when another attempt counted first (nothing written): read again and
    /// retry.
    #[tracing::instrument(level = "debug", skip(self, event))]
    pub async fn claim_failure(
        &self,
        scope: &str,
        seen: FailureCount,
        locked_until: Option<UnixMicros>,
        now: UnixMicros,
        event: Option<&Event>,
    ) -> Result<bool, AuthError> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(CLAIM)
            .bind(scope.to_owned())
            .bind(seen.failures + 1)
            .bind(locked_until.map(|t| t.0))
            .bind(now.0)
            .bind(seen.failures)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(event) = event {
            audit::record(&mut *tx, event).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The latest end of a lock on any of `scopes` (a scope may be named twice).
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn latest_lock(&self, scopes: [&str; 3]) -> Result<Option<UnixMicros>, AuthError> {
        let until: Option<i64> = sqlx::query_scalar(LATEST_LOCK)
            .bind(scopes[0].to_owned())
            .bind(scopes[1].to_owned())
            .bind(scopes[2].to_owned())
            .fetch_one(&self.pool)
            .await?;
        Ok(until.map(UnixMicros))
    }

    /// A success: the counts of these scopes start again (a scope may be named twice).
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn clear_failures(&self, scopes: [&str; 3]) -> Result<(), AuthError> {
        sqlx::query(CLEAR)
            .bind(scopes[0].to_owned())
            .bind(scopes[1].to_owned())
            .bind(scopes[2].to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets counts untouched and unlocked since `before`.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn purge_failures(&self, before: UnixMicros) -> Result<u64, AuthError> {
        let result = sqlx::query(PURGE)
            .bind(before.0)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
