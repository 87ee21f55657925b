//! What the service does, independent of gRPC: the credential lifecycle ([`tokens`]), login
//! and its lockout ([`login`]), the second factor ([`second_factor`]) and the login step it
//! adds ([`mfa_login`]), and user management ([`users`]). Handlers in `grpc` only
//! translate to and from these calls.

mod login;
mod mfa_login;
mod second_factor;
mod tokens;
mod users;

use std::{sync::Arc, time::Duration};

use service_kit::idempotency::Writes;

pub use login::{LockoutPolicy, LoginAnswer, LoginOutcome, LoginRequest};
pub use mfa_login::MfaCompletion;
pub use second_factor::DisableProof;
pub use tokens::Issued;
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
    /// Who the second factor's codes are for, in an authenticator app (`MFA_ISSUER`).
    mfa_issuer: Arc<str>,
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
            mfa_issuer: issue.mfa_issuer,
        }
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
