//! The `mail_outbox` table (see `crate::mail`): a message enqueued in its cause's transaction,
//! claimed by one sender at a time, and marked sent or failed.

use service_kit::database::Backend;
use sqlx::{AnyConnection, Row};

use super::Store;
use crate::{clock::UnixMicros, error::AuthError, mail::Letter};

const ENQUEUE: &str = "INSERT INTO mail_outbox (recipient, subject, body, created_at, \
                       next_attempt_at) VALUES ($1, $2, $3, $4, $4)";
/// The oldest due message no live claim holds, claimed until `$1`. On PostgreSQL a replica
/// skips the row another is claiming; on SQLite the one writer claims alone.
macro_rules! claim {
    ($lock:literal) => {
        concat!(
            "UPDATE mail_outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM mail_outbox WHERE sent_at IS NULL \
             AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) \
             ORDER BY id LIMIT 1 ",
            $lock,
            ") AND (claimed_until IS NULL OR claimed_until < $2) \
             RETURNING id, recipient, subject, body, attempts"
        )
    };
}
const CLAIM_POSTGRES: &str = claim!("FOR UPDATE SKIP LOCKED");
const CLAIM_SQLITE: &str = claim!("");
/// Sent: the body (which may carry a one-time link) is not kept.
const SENT: &str = "UPDATE mail_outbox SET sent_at = $1, body = '', claimed_until = NULL, \
                    last_error = NULL WHERE id = $2 AND sent_at IS NULL";
const FAILED: &str = "UPDATE mail_outbox SET claimed_until = NULL, next_attempt_at = $1, \
                      last_error = $2 WHERE id = $3 AND sent_at IS NULL";
/// Given up: marked as done, with the reason, and its body dropped.
const UNDELIVERABLE: &str = "UPDATE mail_outbox SET sent_at = $1, body = '', \
                             claimed_until = NULL, last_error = $2 WHERE id = $3";
const PURGE: &str = "DELETE FROM mail_outbox WHERE created_at < $1";

/// A message claimed for one attempt.
#[derive(Debug)]
pub struct ClaimedLetter {
    pub id: i64,
    pub letter: Letter,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

impl Store {
    /// Writes `letter` on `conn`, inside the transaction of the change that causes it.
    pub async fn enqueue_letter(
        conn: &mut AnyConnection,
        letter: &Letter,
        now: UnixMicros,
    ) -> Result<(), AuthError> {
        sqlx::query(ENQUEUE)
            .bind(letter.to.clone())
            .bind(letter.subject.clone())
            .bind(letter.body.clone())
            .bind(now.0)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// The next due message, claimed until `until`, if any.
    pub async fn claim_letter(
        &self,
        now: UnixMicros,
        until: UnixMicros,
    ) -> Result<Option<ClaimedLetter>, AuthError> {
        let claim = match self.backend {
            Backend::Postgres => CLAIM_POSTGRES,
            Backend::Sqlite => CLAIM_SQLITE,
        };
        let row = sqlx::query(claim)
            .bind(until.0)
            .bind(now.0)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(ClaimedLetter {
            id: row.try_get("id")?,
            letter: Letter {
                to: row.try_get("recipient")?,
                subject: row.try_get("subject")?,
                body: row.try_get("body")?,
            },
            attempts: row.try_get("attempts")?,
        }))
    }

    pub async fn letter_sent(&self, id: i64, now: UnixMicros) -> Result<(), AuthError> {
        sqlx::query(SENT)
            .bind(now.0)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn letter_failed(
        &self,
        id: i64,
        retry_at: UnixMicros,
        reason: &str,
    ) -> Result<(), AuthError> {
        sqlx::query(FAILED)
            .bind(retry_at.0)
            .bind(reason.to_owned())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn letter_undeliverable(
        &self,
        id: i64,
        now: UnixMicros,
        reason: &str,
    ) -> Result<(), AuthError> {
        sqlx::query(UNDELIVERABLE)
            .bind(now.0)
            .bind(reason.to_owned())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes every message enqueued before `before`, sent or not (a link in one still
    /// unsent has long expired).
    pub async fn purge_letters(&self, before: UnixMicros) -> Result<u64, AuthError> {
        let purged = sqlx::query(PURGE)
            .bind(before.0)
            .execute(&self.pool)
            .await?;
        Ok(purged.rows_affected())
    }
}
