//! Account recovery's tables: password reset tokens and e-mail verification keys (both kept as
//! digests of what was mailed), the users' `email_verified` flag, and the per-address budget of
//! such mails (counted in `login_failures` under a `mail:` scope, the lockout's table).
//!
//! A reset token is bound to a fingerprint of the user's password hash and email when it was
//! issued: a password or email changed any other way (a change, an admin's update, another
//! reset) kills it, as Django's token generator does, with no hook in those writes.

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use super::{Store, audit, credentials::delete_credentials};
use crate::{
    clock::UnixMicros,
    domain::{Email, HashedPassword, TokenDigest, audit::Event},
    error::AuthError,
};

const BY_EMAIL: &str = "SELECT id, username, email, email_key, password_hash, is_active, \
                        email_verified FROM users WHERE email_key = $1";
const USER_EXISTS: &str = "SELECT COUNT(*) FROM users WHERE id = $1";
/// One more mail to an address in the window that started at `updated_at`, or the first of a
/// new window when that one is over ($3: the oldest start still in the window).
const COUNT_MAIL: &str = "INSERT INTO login_failures (scope, failures, locked_until, updated_at) \
     VALUES ($1, 1, NULL, $2) ON CONFLICT (scope) DO UPDATE SET \
     failures = CASE WHEN login_failures.updated_at < $3 THEN 1 \
                ELSE login_failures.failures + 1 END, \
     updated_at = CASE WHEN login_failures.updated_at < $3 THEN $2 \
                  ELSE login_failures.updated_at END \
     RETURNING failures";
const INSERT_RESET: &str = "INSERT INTO password_resets (digest, user_id, fingerprint, \
                            expires_at) VALUES ($1, $2, $3, $4)";
const RESET_OF: &str = "SELECT r.fingerprint, r.expires_at, u.password_hash, u.email_key \
     FROM password_resets r JOIN users u ON u.id = r.user_id \
     WHERE r.digest = $1 AND r.user_id = $2";
const TAKE_RESET: &str = "DELETE FROM password_resets WHERE digest = $1 AND user_id = $2 \
                          AND expires_at > $3 RETURNING fingerprint";
const CURRENT: &str = "SELECT password_hash, email_key FROM users WHERE id = $1";
/// Only over the hash the token's fingerprint was checked against: a change racing the reset
/// leaves this one with nothing to do.
const SET_PASSWORD_OVER: &str = "UPDATE users SET password_hash = $1, \
     credentials_version = credentials_version + 1 WHERE id = $2 AND password_hash = $3";
const DROP_RESETS: &str = "DELETE FROM password_resets WHERE user_id = $1";
const INSERT_VERIFICATION: &str = "INSERT INTO email_verifications (digest, user_id, \
                                   email_key, expires_at) VALUES ($1, $2, $3, $4)";
const TAKE_VERIFICATION: &str = "DELETE FROM email_verifications WHERE digest = $1 \
                                 AND expires_at > $2 RETURNING user_id, email_key";
const MARK_VERIFIED: &str =
    "UPDATE users SET email_verified = TRUE WHERE id = $1 AND email_key = $2";
const MARK_UNVERIFIED: &str = "UPDATE users SET email_verified = FALSE WHERE id = $1";
const DROP_VERIFICATIONS: &str = "DELETE FROM email_verifications WHERE user_id = $1";
const PURGE_RESETS: &str = "DELETE FROM password_resets WHERE expires_at < $1";
const PURGE_VERIFICATIONS: &str = "DELETE FROM email_verifications WHERE expires_at < $1";

/// The account an address belongs to, with what a reset or a verification mail needs.
#[derive(Debug)]
pub struct MailTarget {
    pub user_id: i64,
    /// The username, or else the email: how the messages name the account.
    pub account: String,
    /// The address as stored (mail goes to it, not to what was typed).
    pub address: String,
    pub is_active: bool,
    pub email_verified: bool,
    email_key: String,
    password_hash: HashedPassword,
}

impl MailTarget {
    /// What a reset token issued now is bound to.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.password_hash.expose(), Some(&self.email_key))
    }

    pub fn email_key(&self) -> &str {
        &self.email_key
    }
}

/// Why a presented reset token is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ResetRefused {
    NoSuchUser,
    BadToken,
}

impl Store {
    /// The account with this email, if any.
    pub async fn mail_target(&self, email: &Email) -> Result<Option<MailTarget>, AuthError> {
        let Some(row) = sqlx::query(BY_EMAIL)
            .bind(email.key())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let username: Option<String> = row.try_get("username")?;
        let address: String = row.try_get("email")?;
        Ok(Some(MailTarget {
            user_id: row.try_get("id")?,
            account: username.unwrap_or_else(|| address.clone()),
            address,
            is_active: service_kit::database::flag(&row, "is_active")?,
            email_verified: service_kit::database::flag(&row, "email_verified")?,
            email_key: row.try_get("email_key")?,
            password_hash: HashedPassword::new(row.try_get("password_hash")?),
        }))
    }

    /// Counts one more mail of `kind` to the address `email_key` in the window of `window`
    /// from `now`, on `conn` (the request's transaction); the count so far, this one included.
    pub async fn count_mail(
        conn: &mut AnyConnection,
        kind: &str,
        email_key: &str,
        now: UnixMicros,
        window: std::time::Duration,
    ) -> Result<i64, AuthError> {
        Ok(sqlx::query_scalar(COUNT_MAIL)
            .bind(format!("mail:{kind}:{email_key}"))
            .bind(now.0)
            .bind(now.minus(window).0)
            .fetch_one(conn)
            .await?)
    }

    pub async fn insert_reset(
        conn: &mut AnyConnection,
        digest: &TokenDigest,
        target: &MailTarget,
        expires_at: UnixMicros,
    ) -> Result<(), AuthError> {
        sqlx::query(INSERT_RESET)
            .bind(digest.0.clone())
            .bind(target.user_id)
            .bind(target.fingerprint())
            .bind(expires_at.0)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Whether `digest` is a live reset token of user `user_id` at `now`, checked without
    /// using it (so that a bad one costs no password hash).
    pub async fn check_reset(
        &self,
        user_id: i64,
        digest: &TokenDigest,
        now: UnixMicros,
    ) -> Result<Result<(), ResetRefused>, AuthError> {
        let exists: i64 = sqlx::query_scalar(USER_EXISTS)
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        if exists == 0 {
            return Ok(Err(ResetRefused::NoSuchUser));
        }
        let Some(row) = sqlx::query(RESET_OF)
            .bind(digest.0.clone())
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(Err(ResetRefused::BadToken));
        };
        let live = row.try_get::<i64, _>("expires_at")? > now.0;
        let issued: String = row.try_get("fingerprint")?;
        Ok(if live && current_fingerprint(&row)? == issued {
            Ok(())
        } else {
            Err(ResetRefused::BadToken)
        })
    }

    /// Uses the reset token `digest` of `user_id` to set `password_hash`, revoking every
    /// credential of the user and every other reset token, in one transaction with `reset`.
    /// `Ok(None)`: the token was used, expired or outlived by a change meanwhile, and nothing
    /// changed.
    pub async fn reset_password(
        &self,
        user_id: i64,
        digest: &TokenDigest,
        password_hash: HashedPassword,
        reset: &Event,
    ) -> Result<Option<u64>, AuthError> {
        let now = reset.at;
        let mut tx = self.pool.begin().await?;
        let issued: Option<String> = sqlx::query_scalar(TAKE_RESET)
            .bind(digest.0.clone())
            .bind(user_id)
            .bind(now.0)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(issued) = issued else {
            return Ok(None);
        };
        let Some(current) = sqlx::query(CURRENT)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let old_hash: String = current.try_get("password_hash")?;
        if current_fingerprint(&current)? != issued {
            return Ok(None);
        }
        let set = sqlx::query(SET_PASSWORD_OVER)
            .bind(password_hash.into_exposed())
            .bind(user_id)
            .bind(old_hash)
            .execute(&mut *tx)
            .await?;
        if set.rows_affected() == 0 {
            return Ok(None);
        }
        let revoked = delete_credentials(&mut tx, user_id, None).await?;
        sqlx::query(DROP_RESETS)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let reset = reset.clone().with("credentials_revoked", revoked);
        audit::record(&mut *tx, &reset).await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    pub async fn insert_verification(
        conn: &mut AnyConnection,
        digest: &TokenDigest,
        user_id: i64,
        email_key: &str,
        expires_at: UnixMicros,
    ) -> Result<(), AuthError> {
        sqlx::query(INSERT_VERIFICATION)
            .bind(digest.0.clone())
            .bind(user_id)
            .bind(email_key.to_owned())
            .bind(expires_at.0)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Marks `user_id`'s email as not verified, on `conn` (a sign-up's transaction).
    pub async fn mark_unverified(conn: &mut AnyConnection, user_id: i64) -> Result<(), AuthError> {
        sqlx::query(MARK_UNVERIFIED)
            .bind(user_id)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Uses the verification key `digest`: the user whose email it verified, or `None` when it
    /// is unknown, used, expired, or for an address the user no longer has (nothing changes).
    /// `verified` is recorded with it, as done by that user.
    pub async fn verify_email(
        &self,
        digest: &TokenDigest,
        verified: &Event,
    ) -> Result<Option<i64>, AuthError> {
        let now = verified.at;
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query(TAKE_VERIFICATION)
            .bind(digest.0.clone())
            .bind(now.0)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let user_id: i64 = row.try_get("user_id")?;
        let email_key: String = row.try_get("email_key")?;
        let marked = sqlx::query(MARK_VERIFIED)
            .bind(user_id)
            .bind(email_key)
            .execute(&mut *tx)
            .await?;
        if marked.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query(DROP_VERIFICATIONS)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        audit::record(&mut *tx, &verified.clone().by_self(user_id)).await?;
        tx.commit().await?;
        Ok(Some(user_id))
    }

    /// Deletes reset tokens and verification keys that expired before `before`.
    pub async fn purge_recovery(&self, before: UnixMicros) -> Result<u64, AuthError> {
        let mut purged = 0;
        for statement in [PURGE_RESETS, PURGE_VERIFICATIONS] {
            purged += sqlx::query(statement)
                .bind(before.0)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(purged)
    }
}

/// The fingerprint of the user in a row with `password_hash` and `email_key`.
fn current_fingerprint(row: &sqlx::any::AnyRow) -> Result<String, sqlx::Error> {
    let hash: String = row.try_get("password_hash")?;
    let email_key: Option<String> = row.try_get("email_key")?;
    Ok(fingerprint(&hash, email_key.as_deref()))
}

/// A digest of what a reset token must outlive no change of.
fn fingerprint(password_hash: &str, email_key: Option<&str>) -> String {
    let mut digest = Sha256::new();
    digest.update(password_hash.as_bytes());
    digest.update([0]);
    digest.update(email_key.unwrap_or("").as_bytes());
    hex::encode(digest.finalize())
}
