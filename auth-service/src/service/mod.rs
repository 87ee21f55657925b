//! What the service does, independent of gRPC: the credential lifecycle ([`tokens`]), login
//! and its lockout ([`login`]), the second factor ([`second_factor`]) and the login step it
//! adds ([`mfa_login`]), user management ([`users`]), password reset and e-mail verification
//! by mail ([`recovery`]), and reading the audit trail ([`audit`]). Each write records its
//! security events in its own transaction (see `store::audit::record`). Handlers in `grpc`
//! only translate to and from these calls.

mod audit;
mod login;
mod mfa_login;
mod recovery;
mod second_factor;
mod tokens;
mod users;

use std::{sync::Arc, time::Duration};

use service_kit::idempotency::Writes;

pub use login::{LockoutPolicy, LoginAnswer, LoginOutcome, LoginRequest};
pub use mfa_login::MfaCompletion;
pub use second_factor::DisableProof;
pub use tokens::{Issued, Purged};
pub use users::{AccountChanges, NewAccount};

use crate::{
    clock::Clock,
    config::recovery::RecoverySettings,
    hashing::PasswordHasher,
    mail::{MailSettings, Outbox},
    revocations::Revocations,
    store::{CredentialLimit, Store},
};

/// The accounts the service keeps: users, their passwords and credentials, and the rules for
/// changing them. Cheap to clone, shared by every call.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    hasher: PasswordHasher,
    clock: Arc<dyn Clock>,
    token_ttl: Duration,
    lockout: LockoutPolicy,
    credential_limit: CredentialLimit,
    /// Every withdrawing write tells the verdict caches here, after its commit, and returns
    /// once they have acknowledged.
    revocations: Revocations,
    /// Runs the admin writes that may carry an idempotency key.
    writes: Writes,
    /// Where messages are written, with the change that causes them.
    outbox: Outbox,
    /// Password reset and e-mail verification: links, lifetimes, whether login waits for a
    /// verified address.
    recovery: Arc<RecoverySettings>,
    /// Who the second factor's codes are for, in an authenticator app (`MFA_ISSUER`).
    mfa_issuer: Arc<str>,
    /// How long audit events are kept; `None`: forever.
    audit_retention: Option<Duration>,
}

/// How credentials are issued: their lifetime, how many of a kind one user may hold, and whose
/// codes an authenticator app says the second factor's are.
#[derive(Debug, Clone)]
pub struct IssuePolicy {
    pub token_ttl: Duration,
    pub limit_per_user: CredentialLimit,
    /// `MFA_ISSUER`.
    pub mfa_issuer: Arc<str>,
}

impl Accounts {
    pub fn new(
        store: Store,
        hasher: PasswordHasher,
        clock: Arc<dyn Clock>,
        issue: IssuePolicy,
        lockout: LockoutPolicy,
        revocations: Revocations,
        writes: Writes,
    ) -> Self {
        Self {
            store,
            hasher,
            clock,
            token_ttl: issue.token_ttl,
            lockout,
            credential_limit: issue.limit_per_user,
            revocations,
            writes,
            outbox: Outbox::new(MailSettings::for_tests()),
            recovery: Arc::new(RecoverySettings::for_tests()),
            mfa_issuer: issue.mfa_issuer,
            audit_retention: None,
        }
    }

    /// Audit events are purged `retention` after they happened (`None`: kept forever).
    pub fn keeping_audit_events(mut self, retention: Option<Duration>) -> Self {
        self.audit_retention = retention;
        self
    }

    /// The same accounts, mailing through `outbox` under `recovery`'s rules.
    pub fn with_mail(self, outbox: Outbox, recovery: RecoverySettings) -> Self {
        Self {
            outbox,
            recovery: Arc::new(recovery),
            ..self
        }
    }

    /// Where messages are written.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The store, for the mail sender.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The hub `WatchRevocations` streams are served from.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// The writer of the keyed writes.
    pub fn writes(&self) -> &Writes {
        &self.writes
    }
}
