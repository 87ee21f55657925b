//! The credential lifecycle: issue, validate, refresh, revoke.

use std::time::Duration;

use super::Accounts;
use crate::{
    clock::UnixMicros,
    domain::{
        CredentialKind, Principal, TokenKey,
        audit::{Event, EventType, Origin},
    },
    error::AuthError,
    revocations::Revocation,
    store::NewCredential,
};

/// How long after a refresh the old key is merely invalid. Concurrent requests of one client
/// (two tabs refreshing at once) present it in that window; only a later return means a copy of
/// the key is loose, and revokes the chain.
const REFRESH_REUSE_GRACE: Duration = Duration::from_secs(2);

/// How long an expired key is still told apart ("Token has expired.") from an unknown one;
/// the background purge removes it after that, with refresh tombstones past their chain's life.
const EXPIRED_KEYS_KEPT: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long an unlocked failure count is kept after its last failure.
const FAILURES_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

/// How many rows one purge deleted, of each kind.
#[derive(Debug, Clone, Copy)]
pub struct Purged {
    pub credentials: u64,
    pub failures: u64,
    pub idempotency_keys: u64,
    pub audit_events: u64,
}

/// A credential just issued: the key is shown to its holder this once.
#[derive(Debug, Clone)]
pub struct Issued {
    pub key: TokenKey,
    pub kind: CredentialKind,
    pub expires_at: UnixMicros,
}

impl Accounts {
    /// A new credential for `user_id`, starting a refresh chain of its own, if the user's
    /// credentials version is still `version` (read with whatever decided to issue it).
    /// Otherwise a password change, deactivation or logout-all came in between, and the issue
    /// is refused as `refused`.
    pub(super) async fn issue(
        &self,
        user_id: i64,
        kind: CredentialKind,
        version: i64,
        refused: fn() -> AuthError,
    ) -> Result<Issued, AuthError> {
        let key = TokenKey::generate();
        let now = self.clock.now();
        let digest = key.digest();
        let credential = NewCredential {
            family: digest.0.clone(),
            digest,
            user_id,
            kind,
            created_at: now,
            expires_at: now.plus(self.token_ttl),
        };
        let Some(trimmed) = self
            .store
            .insert_credential(&credential, version, self.credential_limit)
            .await?
        else {
            return Err(refused());
        };
        if trimmed > 0 {
            // The oldest credentials went over the per-user limit: caches must forget them.
            self.revocations.publish(Revocation::User(user_id)).await;
        }
        Ok(Issued {
            key,
            kind,
            expires_at: credential.expires_at,
        })
    }

    /// Checks a presented key of the given kind, from `origin`. An expired key is deleted on
    /// this use; a refreshed-away key, once past the grace period, revokes its whole chain,
    /// since only a stolen copy would come back.
    #[tracing::instrument(level = "debug", skip(self, raw_key, origin))]
    pub async fn validate(
        &self,
        raw_key: &str,
        kind: CredentialKind,
        origin: &Origin,
    ) -> Result<Principal, AuthError> {
        let key = TokenKey::parse(raw_key).ok_or(AuthError::TokenInvalid)?;
        let digest = key.digest();
        if let Some(principal) = self.revocations.cached(&digest, kind, self.clock.now()) {
            return Ok(principal);
        }
        let ticket = self.revocations.ticket();
        let record = self
            .store
            .credential(&digest)
            .await?
            .filter(|record| record.kind == kind)
            .ok_or(AuthError::TokenInvalid)?;
        let now = self.clock.now();
        if let Some(refreshed_at) = record.refreshed_at {
            if now < refreshed_at.plus(REFRESH_REUSE_GRACE) {
                return Err(AuthError::TokenInvalid);
            }
            // No actor: whoever presented it is not believed to be the user.
            let reused = Event::new(EventType::TokenReuseDetected, now, origin)
                .on(record.user.id)
                .failed()
                .with("kind", kind.as_db());
            let revoked = self.store.delete_family(&record.family, reused).await?;
            // The chain's other keys may be cached anywhere; the user's verdicts all go.
            self.revocations
                .publish(Revocation::User(record.user.id))
                .await;
            tracing::warn!(
                user_id = record.user.id,
                revoked,
                "refreshed-away token reused; its chain is revoked"
            );
            return Err(AuthError::TokenInvalid);
        }
        if record.expires_at <= now {
            self.store.delete_credential(&digest).await?;
            return Err(AuthError::TokenExpired);
        }
        if !record.user.is_active {
            return Err(AuthError::UserInactive);
        }
        let principal = Principal {
            user: record.user,
            kind,
            digest,
            family: record.family,
            expires_at: record.expires_at,
            credentials_version: record.credentials_version,
        };
        self.revocations.remember(ticket, &principal);
        Ok(principal)
    }

    /// Exchanges the caller's token for a new one of the same chain; the old one is invalid
    /// from then on. Of two racing refreshes, exactly one wins. Sessions are not refreshed
    /// here: a cookie's key must never come back in a body.
    #[tracing::instrument(skip_all, fields(user_id = principal.user.id))]
    pub async fn refresh(
        &self,
        principal: &Principal,
        origin: &Origin,
    ) -> Result<Issued, AuthError> {
        if principal.kind != CredentialKind::Token {
            return Err(AuthError::CredentialsMissing);
        }
        let key = TokenKey::generate();
        let now = self.clock.now();
        let new = NewCredential {
            digest: key.digest(),
            user_id: principal.user.id,
            kind: principal.kind,
            family: principal.family.clone(),
            created_at: now,
            expires_at: now.plus(self.token_ttl),
        };
        if !self
            .store
            .refresh_credential(
                &principal.digest,
                &new,
                principal.credentials_version,
                &Event::new(EventType::TokenRefreshed, now, origin).by_self(principal.user.id),
            )
            .await?
        {
            return Err(AuthError::TokenInvalid);
        }
        self.revocations
            .publish(Revocation::Credentials(vec![principal.digest.clone()]))
            .await;
        Ok(Issued {
            key,
            kind: principal.kind,
            expires_at: new.expires_at,
        })
    }

    /// Deletes what no request needs any more: credentials expired for a while (keys never
    /// presented again, refresh tombstones), expired second-factor challenges, stale failure
    /// counts, expired idempotency keys (whose expiry is wall-clock time, as the keys' are
    /// stamped) and audit events past their retention.
    pub async fn purge(&self) -> Result<Purged, AuthError> {
        let now = self.clock.now();
        let audit_events = match self.audit_retention {
            Some(retention) => self.store.purge_audit_events(now.minus(retention)).await?,
            None => 0,
        };
        // A login's second-factor challenge counts as a credential here.
        let credentials = self
            .store
            .purge_expired(now.minus(EXPIRED_KEYS_KEPT))
            .await?
            + self.store.purge_challenges(now).await?;
        let failures = self.store.purge_failures(now.minus(FAILURES_KEPT)).await?;
        let keys = self
            .writes
            .purge_expired(std::time::SystemTime::now())
            .await?;
        Ok(Purged {
            credentials,
            failures,
            idempotency_keys: keys,
            audit_events,
        })
    }

    /// Logout: revokes the presented credential only.
    pub async fn revoke(&self, principal: &Principal, origin: &Origin) -> Result<(), AuthError> {
        let logout = Event::new(EventType::Logout, self.clock.now(), origin)
            .by_self(principal.user.id)
            .with("kind", principal.kind.as_db());
        self.store
            .revoke_credential(&principal.digest, &logout)
            .await?;
        self.revocations
            .publish(Revocation::Credentials(vec![principal.digest.clone()]))
            .await;
        Ok(())
    }

    /// Logout everywhere: revokes every token and session of the caller.
    pub async fn revoke_all(
        &self,
        principal: &Principal,
        origin: &Origin,
    ) -> Result<u64, AuthError> {
        let logout =
            Event::new(EventType::LogoutAll, self.clock.now(), origin).by_self(principal.user.id);
        let revoked = self
            .store
            .delete_credentials_of(principal.user.id, None, logout)
            .await?;
        self.revocations
            .publish(Revocation::User(principal.user.id))
            .await;
        Ok(revoked)
    }
}
