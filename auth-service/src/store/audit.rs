//! The `audit_events` table: [`record`] writes an event on the transaction of the change it
//! records (one line in any store write), [`Store::audit_events`] reads a filtered page of them,
//! newest first, and [`Store::purge_audit_events`] forgets those past the retention.

use sqlx::{Any, Executor, Row};

use super::Store;
use crate::{clock::UnixMicros, domain::audit::Event, error::AuthError};

const INSERT: &str = "INSERT INTO audit_events (occurred_at, event_type, actor_id, target_id, \
                      client_address, request_id, outcome, detail) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// `$1` a user (actor or target), `$2` a type, `[$3, $4)` a time range; each `NULL` for any.
macro_rules! filtered {
    () => {
        " FROM audit_events WHERE ($1 IS NULL OR actor_id = $1 OR target_id = $1) \
         AND ($2 IS NULL OR event_type = $2) AND ($3 IS NULL OR occurred_at >= $3) \
         AND ($4 IS NULL OR occurred_at < $4)"
    };
}
const LIST: &str = concat!(
    "SELECT id, occurred_at, event_type, actor_id, target_id, client_address, request_id, \
     outcome, detail",
    filtered!(),
    " ORDER BY id DESC LIMIT $5 OFFSET $6"
);
const COUNT: &str = concat!("SELECT COUNT(*)", filtered!());
const PURGE: &str = "DELETE FROM audit_events WHERE occurred_at < $1";

/// Records `event` on `executor`: the transaction of the change it records, so that a change
/// rolled back leaves no event.
#[tracing::instrument(level = "debug", skip_all, fields(kind = event.kind.name()))]
pub async fn record<'e>(
    executor: impl Executor<'e, Database = Any>,
    event: &Event,
) -> Result<(), AuthError> {
    sqlx::query(INSERT)
        .bind(event.at.0)
        .bind(event.kind.name())
        .bind(event.actor_id)
        .bind(event.target_id)
        .bind(event.origin.client.map(|client| client.to_string()))
        .bind(event.origin.request_id.clone())
        .bind(event.outcome.name())
        .bind(serde_json::Value::Object(event.detail.clone()).to_string())
        .execute(executor)
        .await?;
    Ok(())
}

/// Which events a list reads; `None` for any.
#[derive(Debug, Default)]
pub struct AuditFilter {
    /// As actor or as target.
    pub user_id: Option<i64>,
    /// A name of [`crate::domain::audit::EventType`].
    pub kind: Option<&'static str>,
    pub since: Option<UnixMicros>,
    pub until: Option<UnixMicros>,
}

/// An event as stored: its names as text, so a row of a kind this build no longer knows still
/// reads; `detail` a JSON object.
#[derive(Debug)]
pub struct StoredEvent {
    pub id: i64,
    pub at: UnixMicros,
    pub kind: String,
    pub actor_id: Option<i64>,
    pub target_id: Option<i64>,
    pub client_address: Option<String>,
    pub request_id: Option<String>,
    pub outcome: String,
    pub detail: String,
}

impl Store {
    /// A page of the events `filter` selects, newest first, and how many it selects in all.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<StoredEvent>, u64), AuthError> {
        let bind = |query: &'static str| {
            sqlx::query(query)
                .bind(filter.user_id)
                .bind(filter.kind)
                .bind(filter.since.map(|at| at.0))
                .bind(filter.until.map(|at| at.0))
        };
        let rows = bind(LIST)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let events = rows
            .iter()
            .map(|row| {
                Ok(StoredEvent {
                    id: row.try_get("id")?,
                    at: UnixMicros(row.try_get("occurred_at")?),
                    kind: row.try_get("event_type")?,
                    actor_id: row.try_get("actor_id")?,
                    target_id: row.try_get("target_id")?,
                    client_address: row.try_get("client_address")?,
                    request_id: row.try_get("request_id")?,
                    outcome: row.try_get("outcome")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let total: i64 = bind(COUNT).fetch_one(&self.pool).await?.try_get(0)?;
        Ok((events, u64::try_from(total).unwrap_or(0)))
    }

    /// Forgets the events that happened before `before`.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn purge_audit_events(&self, before: UnixMicros) -> Result<u64, AuthError> {
        let result = sqlx::query(PURGE)
            .bind(before.0)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
