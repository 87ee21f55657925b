//! What logging in and passwords read and write of the `users` table: the record a login
//! checks, the stamp of a successful one, a new password (with the credentials it revokes),
//! a rehash, and a sample of the imported hashes whose cost the hasher learns.

use sqlx::Row;

use super::{
    Store, audit,
    credentials::delete_credentials,
    user_row::{found_user, user_from_row},
};
use crate::{
    domain::{Email, HashedPassword, TokenDigest, User, Username, audit::Event},
    error::AuthError,
};

const FOREIGN_HASH_SAMPLE: &str = "SELECT password_hash FROM users \
     WHERE password_hash NOT LIKE '$argon2%' AND password_hash NOT LIKE '!%' \
     AND password_hash <> '' LIMIT 1000";
const LOGIN_BY_USERNAME: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", password_hash, email_verified FROM users WHERE username_key = $1"
);
const LOGIN_BY_EMAIL: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", password_hash, email_verified FROM users WHERE email_key = $1"
);
const LOGIN_BY_ID: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", password_hash, email_verified FROM users WHERE id = $1"
);
const RECORD_LOGIN: &str = concat!(
    "UPDATE users SET last_login = $1 WHERE id = $2 RETURNING ",
    user_columns!()
);
const SET_PASSWORD: &str = "UPDATE users SET password_hash = $1, \
                            credentials_version = credentials_version + 1 WHERE id = $2";
const REPLACE_PASSWORD_HASH: &str =
    "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3";

/// How a login names its account.
#[derive(Debug)]
pub enum UserLookup {
    Username(Username),
    Email(Email),
    Id(i64),
}

impl UserLookup {
    /// What the account was named by, for the trail (never the name itself: a password typed
    /// into the wrong field must not be kept).
    pub fn named_by(&self) -> &'static str {
        match self {
            Self::Username(_) => "username",
            Self::Email(_) => "email",
            Self::Id(_) => "id",
        }
    }
}

/// A user with what a login needs: the hash, and the credentials version an issue is
/// conditional on.
#[derive(Debug)]
pub struct LoginRecord {
    pub user: User,
    pub password_hash: HashedPassword,
    pub credentials_version: i64,
    /// Whether the user's email was verified (or needs none).
    pub email_verified: bool,
}

impl Store {
    /// Up to a thousand stored hashes that are not our argon2id (imported from Django), so
    /// that the cost of checking each kind can be learnt before the first login needs it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn foreign_hash_sample(&self) -> Result<Vec<String>, AuthError> {
        Ok(sqlx::query_scalar(FOREIGN_HASH_SAMPLE)
            .fetch_all(&self.pool)
            .await?)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn login_record(
        &self,
        lookup: &UserLookup,
    ) -> Result<Option<LoginRecord>, AuthError> {
        let query = match lookup {
            UserLookup::Username(username) => sqlx::query(LOGIN_BY_USERNAME).bind(username.key()),
            UserLookup::Email(email) => sqlx::query(LOGIN_BY_EMAIL).bind(email.key()),
            UserLookup::Id(id) => sqlx::query(LOGIN_BY_ID).bind(*id),
        };
        let Some(row) = query.fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        Ok(Some(LoginRecord {
            user: user_from_row(&row)?,
            password_hash: HashedPassword::new(row.try_get("password_hash")?),
            credentials_version: row.try_get("credentials_version")?,
            email_verified: service_kit::database::flag(&row, "email_verified")?,
        }))
    }

    /// A successful login: stamps `last_login` and records `event` (`event.at` is the time).
    #[tracing::instrument(level = "debug", skip(self, event))]
    pub async fn record_login(&self, user_id: i64, event: &Event) -> Result<User, AuthError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(RECORD_LOGIN)
            .bind(event.at.0)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let user = found_user(row)?;
        audit::record(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Sets a new password and revokes every credential of the user but `keep`, in one
    /// transaction, which records `event` with the count revoked.
    #[tracing::instrument(level = "debug", skip(self, password_hash, keep, event))]
    pub async fn set_password(
        &self,
        id: i64,
        password_hash: HashedPassword,
        keep: Option<&TokenDigest>,
        event: Event,
    ) -> Result<u64, AuthError> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(SET_PASSWORD)
            .bind(password_hash.into_exposed())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(AuthError::UserNotFound);
        }
        let revoked = delete_credentials(&mut tx, id, keep).await?;
        audit::record(&mut *tx, &event.with("credentials_revoked", revoked)).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Stores `new` in place of `old` (the same password, hashed anew), unless the hash
    /// changed since `old` was read. Whether it was replaced.
    #[tracing::instrument(level = "debug", skip(self, old, new))]
    pub async fn replace_password_hash(
        &self,
        id: i64,
        old: &HashedPassword,
        new: HashedPassword,
    ) -> Result<bool, AuthError> {
        let result = sqlx::query(REPLACE_PASSWORD_HASH)
            .bind(new.into_exposed())
            .bind(id)
            .bind(old.expose().to_owned())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }
}
