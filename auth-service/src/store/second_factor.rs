//! The second factor's tables: `totp_factors` (the shared secret, whether confirmed, the last
//! step accepted), `totp_recovery_codes` (digests) and `mfa_challenges` (digests of the logins
//! waiting for a code). Every single-use rule is one conditional statement, so that of two
//! racing uses exactly one counts.

use service_kit::database::flag;
use sqlx::{Any, Row, any::AnyArguments, query::Query};

use super::{Store, audit};
use crate::{
    clock::UnixMicros,
    domain::{TokenDigest, audit::Event},
    error::AuthError,
    totp::TotpSecret,
};

const FACTOR: &str =
    "SELECT secret, confirmed_at IS NOT NULL AS confirmed FROM totp_factors WHERE user_id = $1";
/// A new pending secret, replacing a pending one; a confirmed factor stays (no row changes).
const BEGIN: &str = "INSERT INTO totp_factors (user_id, secret, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET secret = $2, created_at = $3, \
                     last_step = NULL WHERE totp_factors.confirmed_at IS NULL";
/// Confirms the pending secret the code was checked against (not one that replaced it since),
/// accepting the code's step.
const CONFIRM: &str = "UPDATE totp_factors SET confirmed_at = $2, last_step = $4 \
                       WHERE user_id = $1 AND confirmed_at IS NULL AND secret = $3 \
                       AND (last_step IS NULL OR last_step < $4)";
/// Accepts a code of `step` only past the last step accepted: no code is used twice.
const ACCEPT_STEP: &str = "UPDATE totp_factors SET last_step = $2 WHERE user_id = $1 \
                           AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $2)";
const DELETE_CODES: &str = "DELETE FROM totp_recovery_codes WHERE user_id = $1";
const INSERT_CODE: &str = "INSERT INTO totp_recovery_codes (user_id, digest) VALUES ($1, $2)";
const USE_CODE: &str = "UPDATE totp_recovery_codes SET used_at = $3 \
                        WHERE user_id = $1 AND digest = $2 AND used_at IS NULL";
const DELETE_FACTOR: &str = "DELETE FROM totp_factors WHERE user_id = $1";
const DELETE_CHALLENGES: &str = "DELETE FROM mfa_challenges WHERE user_id = $1";
const INSERT_CHALLENGE: &str = "INSERT INTO mfa_challenges \
                                (digest, user_id, expires_at, context, open_session, \
                                credentials_version) VALUES ($1, $2, $3, $4, $5, $6)";
const CHALLENGE: &str = "SELECT user_id, context, open_session, credentials_version \
                         FROM mfa_challenges \
                         WHERE digest = $1 AND expires_at > $2";
const CONSUME_CHALLENGE: &str = "DELETE FROM mfa_challenges WHERE digest = $1 AND expires_at > $2";
const PURGE_CHALLENGES: &str = "DELETE FROM mfa_challenges WHERE expires_at <= $1";

/// A user's TOTP factor.
#[derive(Debug)]
pub struct TotpFactor {
    pub secret: TotpSecret,
    /// False while the enrolment waits for its first code.
    pub confirmed: bool,
}

/// A login waiting for its second factor, and what it asked for.
#[derive(Debug)]
pub struct Challenge {
    pub user_id: i64,
    /// The caller's opaque name for what was asked (the gateway's login route).
    pub context: String,
    pub open_session: bool,
    /// The user's credentials version at the login, which what the completion issues needs.
    pub credentials_version: i64,
}

impl Store {
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn totp_factor(&self, user_id: i64) -> Result<Option<TotpFactor>, AuthError> {
        let Some(row) = sqlx::query(FACTOR)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let secret: String = row.try_get("secret")?;
        let secret = TotpSecret::from_base32(&secret)
            .ok_or_else(|| AuthError::internal("a stored TOTP secret is not base32"))?;
        Ok(Some(TotpFactor {
            secret,
            confirmed: flag(&row, "confirmed")?,
        }))
    }

    /// Stores `secret` as the user's pending factor; false (nothing changed) when the user has a
    /// confirmed one.
    #[tracing::instrument(level = "debug", skip(self, secret))]
    pub async fn begin_totp(
        &self,
        user_id: i64,
        secret: &TotpSecret,
        now: UnixMicros,
    ) -> Result<bool, AuthError> {
        let result = sqlx::query(BEGIN)
            .bind(user_id)
            .bind(secret.base32().to_owned())
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Confirms the pending `secret` at `step` and stores the recovery codes' digests in its
    /// place of any older ones; false (nothing changed) if the enrolment was confirmed or
    /// replaced meanwhile. `enrolled` is recorded with it.
    #[tracing::instrument(level = "debug", skip(self, secret, digests, enrolled))]
    pub async fn confirm_totp(
        &self,
        user_id: i64,
        secret: &TotpSecret,
        step: i64,
        digests: Vec<String>,
        enrolled: &Event,
    ) -> Result<bool, AuthError> {
        let now = enrolled.at;
        let mut tx = self.pool.begin().await?;
        let confirmed = sqlx::query(CONFIRM)
            .bind(user_id)
            .bind(now.0)
            .bind(secret.base32().to_owned())
            .bind(step)
            .execute(&mut *tx)
            .await?;
        if confirmed.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(DELETE_CODES)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for digest in digests {
            sqlx::query(INSERT_CODE)
                .bind(user_id)
                .bind(digest)
                .execute(&mut *tx)
                .await?;
        }
        audit::record(&mut *tx, enrolled).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Accepts a code of `step` for the user's confirmed factor; false for a step no later than
    /// the last one accepted (a replay), or no confirmed factor. `used` is recorded with it.
    #[tracing::instrument(level = "debug", skip(self, used))]
    pub async fn accept_totp_step(
        &self,
        user_id: i64,
        step: i64,
        used: &Event,
    ) -> Result<bool, AuthError> {
        let accept = sqlx::query(ACCEPT_STEP).bind(user_id).bind(step);
        self.update_recorded(accept, used).await
    }

    /// Uses up the recovery code of `digest`; false if the user has no such unused code.
    /// `used` is recorded with it.
    #[tracing::instrument(level = "debug", skip(self, digest, used))]
    pub async fn use_recovery_code(
        &self,
        user_id: i64,
        digest: String,
        used: &Event,
    ) -> Result<bool, AuthError> {
        let use_up = sqlx::query(USE_CODE)
            .bind(user_id)
            .bind(digest)
            .bind(used.at.0);
        self.update_recorded(use_up, used).await
    }

    /// Runs `update` (of one row, on a condition) and, if it changed that row, records `event`
    /// in the same transaction; whether it did.
    async fn update_recorded(
        &self,
        update: Query<'_, Any, AnyArguments>,
        event: &Event,
    ) -> Result<bool, AuthError> {
        let mut tx = self.pool.begin().await?;
        if update.execute(&mut *tx).await?.rows_affected() != 1 {
            return Ok(false);
        }
        audit::record(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes the user's factor (pending or confirmed), recovery codes and open challenges;
    /// false if there was no factor. `removed` is recorded with it, if there was.
    #[tracing::instrument(level = "debug", skip(self, removed))]
    pub async fn remove_totp(&self, user_id: i64, removed: &Event) -> Result<bool, AuthError> {
        let mut tx = self.pool.begin().await?;
        for statement in [DELETE_CODES, DELETE_CHALLENGES] {
            sqlx::query(statement)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query(DELETE_FACTOR)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() != 1 {
            return Ok(false);
        }
        audit::record(&mut *tx, removed).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(level = "debug", skip(self, digest, challenge))]
    pub async fn insert_challenge(
        &self,
        digest: &TokenDigest,
        challenge: Challenge,
        expires_at: UnixMicros,
    ) -> Result<(), AuthError> {
        sqlx::query(INSERT_CHALLENGE)
            .bind(digest.0.clone())
            .bind(challenge.user_id)
            .bind(expires_at.0)
            .bind(challenge.context)
            .bind(challenge.open_session)
            .bind(challenge.credentials_version)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The unexpired challenge of `digest`, left in place.
    #[tracing::instrument(level = "debug", skip(self, digest))]
    pub async fn challenge(
        &self,
        digest: &TokenDigest,
        now: UnixMicros,
    ) -> Result<Option<Challenge>, AuthError> {
        let Some(row) = sqlx::query(CHALLENGE)
            .bind(digest.0.clone())
            .bind(now.0)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Challenge {
            user_id: row.try_get("user_id")?,
            context: row.try_get("context")?,
            open_session: flag(&row, "open_session")?,
            credentials_version: row.try_get("credentials_version")?,
        }))
    }

    /// Uses up the challenge of `digest`; false if it expired or another use came first.
    #[tracing::instrument(level = "debug", skip(self, digest))]
    pub async fn consume_challenge(
        &self,
        digest: &TokenDigest,
        now: UnixMicros,
    ) -> Result<bool, AuthError> {
        let result = sqlx::query(CONSUME_CHALLENGE)
            .bind(digest.0.clone())
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes the challenges expired by `now`.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn purge_challenges(&self, now: UnixMicros) -> Result<u64, AuthError> {
        let result = sqlx::query(PURGE_CHALLENGES)
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
