//! The `credentials` table: tokens and sessions, by digest.

use sqlx::Row;

use super::{Store, users::user_from_row};
use crate::{
    clock::UnixMicros,
    domain::{CredentialKind, TokenDigest, User},
    error::AuthError,
};

const INSERT: &str = "INSERT INTO credentials (digest, user_id, kind, family, created_at, \
                      expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
const BY_DIGEST: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", kind, family, expires_at, refreshed_at FROM credentials \
     JOIN users ON users.id = credentials.user_id WHERE digest = $1"
);
/// Marks the old credential refreshed-away, only if nobody did first (exactly one racing
/// refresh wins). It then lives as long as its successor, to catch a reuse.
const MARK_REFRESHED: &str = "UPDATE credentials SET refreshed_at = $1, expires_at = $2 \
                              WHERE digest = $3 AND refreshed_at IS NULL AND expires_at > $1";
const DELETE_ONE: &str = "DELETE FROM credentials WHERE digest = $1";
const DELETE_FAMILY: &str = "DELETE FROM credentials WHERE family = $1";
const DELETE_ALL_OF_USER: &str = "DELETE FROM credentials WHERE user_id = $1";
const PURGE_EXPIRED_OF_USER: &str =
    "DELETE FROM credentials WHERE user_id = $1 AND expires_at <= $2";
const DELETE_ALL_OF_USER_BUT: &str = "DELETE FROM credentials WHERE user_id = $1 AND digest <> $2";

/// A credential about to be stored.
#[derive(Debug)]
pub struct NewCredential {
    pub digest: TokenDigest,
    pub user_id: i64,
    pub kind: CredentialKind,
    /// The digest of the first credential of its refresh chain.
    pub family: String,
    pub created_at: UnixMicros,
    pub expires_at: UnixMicros,
}

/// A stored credential with its user.
#[derive(Debug)]
pub struct CredentialRecord {
    pub user: User,
    pub kind: CredentialKind,
    pub family: String,
    pub expires_at: UnixMicros,
    /// Set once the credential was exchanged for a new one.
    pub refreshed_at: Option<UnixMicros>,
}

impl Store {
    #[tracing::instrument(skip_all)]
    pub async fn insert_credential(&self, credential: &NewCredential) -> Result<(), AuthError> {
        bind_insert(credential).execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn credential(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<CredentialRecord>, AuthError> {
        let Some(row) = sqlx::query(BY_DIGEST)
            .bind(digest.0.clone())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let kind: String = row.try_get("kind")?;
        Ok(Some(CredentialRecord {
            user: user_from_row(&row)?,
            kind: CredentialKind::from_db(&kind)
                .ok_or_else(|| AuthError::internal(format!("credential kind {kind:?}")))?,
            family: row.try_get("family")?,
            expires_at: UnixMicros(row.try_get("expires_at")?),
            refreshed_at: row
                .try_get::<Option<i64>, _>("refreshed_at")?
                .map(UnixMicros),
        }))
    }

    /// Exchanges `old` for `new` in one transaction. False when `old` was no longer live
    /// (another refresh won, or it expired): nothing changed.
    #[tracing::instrument(skip_all)]
    pub async fn refresh_credential(
        &self,
        old: &TokenDigest,
        new: &NewCredential,
        now: UnixMicros,
    ) -> Result<bool, AuthError> {
        let mut tx = self.pool.begin().await?;
        let marked = sqlx::query(MARK_REFRESHED)
            .bind(now.0)
            .bind(new.expires_at.0)
            .bind(old.0.clone())
            .execute(&mut *tx)
            .await?;
        if marked.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        bind_insert(new).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(skip_all)]
    pub async fn delete_credential(&self, digest: &TokenDigest) -> Result<(), AuthError> {
        sqlx::query(DELETE_ONE)
            .bind(digest.0.clone())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Revokes a whole refresh chain (a refreshed-away key came back: it may be stolen).
    #[tracing::instrument(skip_all)]
    pub async fn delete_family(&self, family: &str) -> Result<u64, AuthError> {
        let result = sqlx::query(DELETE_FAMILY)
            .bind(family.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Removes a user's credentials (tokens, sessions, refresh tombstones) that expired before
    /// `expired_before`.
    #[tracing::instrument(skip(self))]
    pub async fn purge_expired(
        &self,
        user_id: i64,
        expired_before: UnixMicros,
    ) -> Result<u64, AuthError> {
        let result = sqlx::query(PURGE_EXPIRED_OF_USER)
            .bind(user_id)
            .bind(expired_before.0)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Revokes every credential of a user, but `keep` if given.
    #[tracing::instrument(skip(self, keep))]
    pub async fn delete_credentials_of(
        &self,
        user_id: i64,
        keep: Option<&TokenDigest>,
    ) -> Result<u64, AuthError> {
        let result = match keep {
            Some(keep) => {
                sqlx::query(DELETE_ALL_OF_USER_BUT)
                    .bind(user_id)
                    .bind(keep.0.clone())
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(DELETE_ALL_OF_USER)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(result.rows_affected())
    }
}

fn bind_insert(
    credential: &NewCredential,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(INSERT)
        .bind(credential.digest.0.clone())
        .bind(credential.user_id)
        .bind(credential.kind.as_db())
        .bind(credential.family.clone())
        .bind(credential.created_at.0)
        .bind(credential.expires_at.0)
}
