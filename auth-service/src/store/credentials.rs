//! The `credentials` table: tokens and sessions, by digest.

use sqlx::{Any, Row, Transaction};

use super::{Store, audit, user_row::user_from_row};
use crate::{
    clock::UnixMicros,
    domain::{CredentialKind, TokenDigest, User, audit::Event},
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
const PURGE_EXPIRED: &str = "DELETE FROM credentials WHERE expires_at <= $1";
const DELETE_ALL_OF_USER_BUT: &str = "DELETE FROM credentials WHERE user_id = $1 AND digest <> $2";
/// Takes the user's row lock (a no-op write) if its credentials version is still the one the
/// issuer read. A withdrawing write bumps the version under the same lock before it deletes, so
/// of the two, the later one sees the other: a credential is never issued past a revocation.
const LOCK_VERSION: &str = "UPDATE users SET credentials_version = credentials_version \
                            WHERE id = $1 AND credentials_version = $2";
const BUMP_VERSION: &str =
    "UPDATE users SET credentials_version = credentials_version + 1 WHERE id = $1";
/// Over the per-user limit, the oldest live credentials of the kind go (knox's
/// `TOKEN_LIMIT_PER_USER`, which refuses instead).
const TRIM_TO_LIMIT: &str = "DELETE FROM credentials WHERE user_id = $1 AND kind = $2 \
                             AND refreshed_at IS NULL AND digest NOT IN \
                             (SELECT digest FROM credentials WHERE user_id = $1 AND kind = $2 \
                             AND refreshed_at IS NULL ORDER BY created_at DESC, digest DESC \
                             LIMIT $3)";

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
    /// The user's credentials version when read (see [`LOCK_VERSION`]).
    pub credentials_version: i64,
}

/// How many live credentials of one kind a user may hold; `None`: no limit.
#[derive(Debug, Clone, Copy)]
pub struct CredentialLimit(pub Option<u32>);

impl Store {
    /// Stores `credential` if the user's credentials version is still `version`, trimming the
    /// user's credentials of its kind to `limit`; how many were trimmed. `None`: a withdrawing
    /// write came first.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn insert_credential(
        &self,
        credential: &NewCredential,
        version: i64,
        limit: CredentialLimit,
    ) -> Result<Option<u64>, AuthError> {
        let mut tx = self.pool.begin().await?;
        if !lock_version(&mut tx, credential.user_id, version).await? {
            return Ok(None);
        }
        bind_insert(credential).execute(&mut *tx).await?;
        let trimmed = trim_to_limit(&mut tx, credential, limit).await?;
        tx.commit().await?;
        Ok(Some(trimmed))
    }

    #[tracing::instrument(level = "debug", skip_all)]
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
            credentials_version: row.try_get("credentials_version")?,
        }))
    }

    /// Exchanges `old` for `new` in one transaction, which records `event` (`event.at` is the
    /// time), if the user's credentials version is still `version`. False when `old` was no
    /// longer live (another refresh won, it expired, or a withdrawing write came first):
    /// nothing changed.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn refresh_credential(
        &self,
        old: &TokenDigest,
        new: &NewCredential,
        version: i64,
        event: &Event,
    ) -> Result<bool, AuthError> {
        let now = event.at;
        let mut tx = self.pool.begin().await?;
        if !lock_version(&mut tx, new.user_id, version).await? {
            return Ok(false);
        }
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
        audit::record(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Forgets a credential found expired.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_credential(&self, digest: &TokenDigest) -> Result<(), AuthError> {
        sqlx::query(DELETE_ONE)
            .bind(digest.0.clone())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Logout: revokes one credential, recording `event`.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn revoke_credential(
        &self,
        digest: &TokenDigest,
        event: &Event,
    ) -> Result<(), AuthError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(DELETE_ONE)
            .bind(digest.0.clone())
            .execute(&mut *tx)
            .await?;
        audit::record(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes a whole refresh chain (a refreshed-away key came back: it may be stolen),
    /// recording `event` with the count revoked.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn delete_family(&self, family: &str, event: Event) -> Result<u64, AuthError> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(DELETE_FAMILY)
            .bind(family.to_owned())
            .execute(&mut *tx)
            .await?;
        let revoked = result.rows_affected();
        audit::record(&mut *tx, &event.with("credentials_revoked", revoked)).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Removes every credential (tokens, sessions, refresh tombstones) that expired before
    /// `expired_before`.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn purge_expired(&self, expired_before: UnixMicros) -> Result<u64, AuthError> {
        let result = sqlx::query(PURGE_EXPIRED)
            .bind(expired_before.0)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Revokes every credential of a user, but `keep` if given, recording `event` with the
    /// count revoked.
    #[tracing::instrument(level = "debug", skip(self, keep, event))]
    pub async fn delete_credentials_of(
        &self,
        user_id: i64,
        keep: Option<&TokenDigest>,
        event: Event,
    ) -> Result<u64, AuthError> {
        let mut tx = self.pool.begin().await?;
        let revoked = delete_credentials(&mut tx, user_id, keep).await?;
        audit::record(&mut *tx, &event.with("credentials_revoked", revoked)).await?;
        tx.commit().await?;
        Ok(revoked)
    }
}

/// Within a withdrawing write's transaction: bumps the user's credentials version (so no issue
/// that read the old one can land), then revokes every credential of the user but `keep`.
pub(super) async fn delete_credentials(
    tx: &mut Transaction<'_, Any>,
    user_id: i64,
    keep: Option<&TokenDigest>,
) -> Result<u64, AuthError> {
    sqlx::query(BUMP_VERSION)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    let result = match keep {
        Some(keep) => {
            sqlx::query(DELETE_ALL_OF_USER_BUT)
                .bind(user_id)
                .bind(keep.0.clone())
                .execute(&mut **tx)
                .await?
        }
        None => {
            sqlx::query(DELETE_ALL_OF_USER)
                .bind(user_id)
                .execute(&mut **tx)
                .await?
        }
    };
    Ok(result.rows_affected())
}

async fn lock_version(
    tx: &mut Transaction<'_, Any>,
    user_id: i64,
    version: i64,
) -> Result<bool, AuthError> {
    let locked = sqlx::query(LOCK_VERSION)
        .bind(user_id)
        .bind(version)
        .execute(&mut **tx)
        .await?;
    Ok(locked.rows_affected() == 1)
}

async fn trim_to_limit(
    tx: &mut Transaction<'_, Any>,
    credential: &NewCredential,
    limit: CredentialLimit,
) -> Result<u64, AuthError> {
    let Some(limit) = limit.0 else {
        return Ok(0);
    };
    let trimmed = sqlx::query(TRIM_TO_LIMIT)
        .bind(credential.user_id)
        .bind(credential.kind.as_db())
        .bind(i64::from(limit))
        .execute(&mut **tx)
        .await?;
    if trimmed.rows_affected() > 0 {
        tracing::info!(
            user_id = credential.user_id,
            revoked = trimmed.rows_affected(),
            "oldest credentials revoked over the per-user limit"
        );
    }
    Ok(trimmed.rows_affected())
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
