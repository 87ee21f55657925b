//! What the service does, independent of gRPC: the credential lifecycle ([`tokens`]), login
//! and its lockout ([`login`]), user management ([`users`]) and reading the audit trail
//! ([`audit`]). Each write records its security events in its own transaction (see
//! `store::audit::record`). Handlers in `grpc` only translate to and from these calls.

mod audit;
mod login;
mod tokens;
mod users;

use std::{sync::Arc, time::Duration};

use service_kit::idempotency::Writes;

pub use login::{LockoutPolicy, LoginRequest};
pub use tokens::{Issued, Purged};
pub use users::{AccountChanges, NewAccount};

use crate::{
    clock::Clock,
    hashing::PasswordHasher,
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
    /// How long audit events are kept; `None`: forever.
    audit_retention: Option<Duration>,
}

/// How credentials are issued: their lifetime and how many of a kind one user may hold.
#[derive(Debug, Clone, Copy)]
pub struct IssuePolicy {
    pub token_ttl: Duration,
    pub limit_per_user: CredentialLimit,
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
            audit_retention: None,
        }
    }

    /// Audit events are purged `retention` after they happened (`None`: kept forever).
    pub fn keeping_audit_events(mut self, retention: Option<Duration>) -> Self {
        self.audit_retention = retention;
        self
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
