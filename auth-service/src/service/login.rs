//! Login, and the lockout that slows password guessing. Failures are counted in the database
//! (so the limit holds across replicas) in two scopes: the account with one client address,
//! and, with a looser ceiling, the account alone, so that a guesser at one address neither
//! locks the owner out elsewhere nor gets unlimited tries from many. An unknown name is counted
//! the same way, by the name, so the answers (status and timing) never tell which accounts
//! exist. Each attempt claims its count *before* the password is checked, so a burst of
//! concurrent guesses gets no more tries than the threshold.

use std::{net::IpAddr, time::Duration};

use super::{Accounts, Issued};
use crate::{
    clock::UnixMicros,
    domain::{CredentialKind, Password, User},
    error::AuthError,
    hashing::Verified,
    store::{FailureCount, UserLookup},
};

/// The first delay once a threshold is reached; it doubles with each further failure.
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Bounds the compare-and-set loop; only a storm of concurrent attempts on one account gets
/// near it, and those are answered as locked.
const MAX_CLAIM_ROUNDS: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures in a row on one account from one client address before it is delayed there;
    /// 0 disables the lockout.
    pub threshold: u32,
    /// Failures in a row on one account from anywhere before it is delayed everywhere.
    pub account_threshold: u32,
}

impl LockoutPolicy {
    /// How long a scope waits after its `failures`-th failure in a row, at `threshold`.
    pub fn delay_after(threshold: u32, failures: i64) -> Option<Duration> {
        let threshold_count = i64::from(threshold);
        if threshold == 0 || failures < threshold_count {
            return None;
        }
        let doublings = u32::try_from(failures - threshold_count)
            .unwrap_or(u32::MAX)
            .min(16);
        Some((FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY))
    }
}

#[derive(Debug)]
pub struct LoginRequest {
    pub lookup: UserLookup,
    pub password: Password,
    /// Also open a cookie session.
    pub open_session: bool,
    /// Where the attempt comes from, for the per-address count.
    pub client: Option<IpAddr>,
}

#[derive(Debug)]
pub struct LoginOutcome {
    pub user: User,
    pub token: Issued,
    pub session: Option<Issued>,
}

/// The two counts an attempt on one account (or name) from one address goes into.
pub(super) struct AttemptScopes {
    with_address: String,
    account: String,
}

impl AttemptScopes {
    /// `subject` names the account (`user:<id>`) or, for an unknown one, the name as looked up.
    pub(super) fn new(subject: String, client: Option<IpAddr>) -> Self {
        let address = client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        Self {
            with_address: format!("{subject}@{address}"),
            account: subject,
        }
    }

    pub(super) fn of_user(user_id: i64, client: Option<IpAddr>) -> Self {
        Self::new(format!("user:{user_id}"), client)
    }

    fn of_lookup(lookup: &UserLookup, client: Option<IpAddr>) -> Self {
        let subject = match lookup {
            UserLookup::Username(username) => format!("username:{}", username.key()),
            UserLookup::Email(email) => format!("email:{}", email.key()),
            UserLookup::Id(id) => format!("user:{id}"),
        };
        Self::new(subject, client)
    }
}

impl Accounts {
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, request: LoginRequest) -> Result<LoginOutcome, AuthError> {
        let record = self.store.login_record(&request.lookup).await?;
        let scopes = match &record {
            Some(record) => AttemptScopes::of_user(record.user.id, request.client),
            None => AttemptScopes::of_lookup(&request.lookup, request.client),
        };
        self.claim_attempt(&scopes).await?;
        // An unknown user is verified against a dummy hash: the same cost as a wrong password.
        let verified = self
            .hasher
            .verify(
                &request.password,
                record.as_ref().map(|r| r.password_hash.clone()),
            )
            .await?;
        let (Some(record), Verified::Match { rehashed }) = (record, verified) else {
            tracing::info!("failed login");
            return Err(AuthError::InvalidCredentials);
        };
        let user_id = record.user.id;
        self.clear_attempts(&scopes).await?;
        if let Some(rehashed) = rehashed {
            // Only over the hash just checked: a password set meanwhile stays.
            let upgraded = self
                .store
                .replace_password_hash(user_id, &record.password_hash, rehashed)
                .await?;
            tracing::info!(user_id, upgraded, "password rehashed with argon2id");
        }
        if !record.user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        let version = record.credentials_version;
        let lost_race = || AuthError::InvalidCredentials;
        let token = self
            .issue(user_id, CredentialKind::Token, version, lost_race)
            .await?;
        let session = if request.open_session {
            Some(
                self.issue(user_id, CredentialKind::Session, version, lost_race)
                    .await?,
            )
        } else {
            None
        };
        let user = self.store.record_login(user_id, self.clock.now()).await?;
        tracing::info!(user_id, "login");
        Ok(LoginOutcome {
            user,
            token,
            session,
        })
    }

    /// Counts this attempt as a failure in both scopes until proven otherwise. A locked scope
    /// refuses it here, before any hashing.
    pub(super) async fn claim_attempt(&self, scopes: &AttemptScopes) -> Result<(), AuthError> {
        if self.lockout.threshold == 0 {
            return Ok(());
        }
        let limits = [
            (&scopes.with_address, self.lockout.threshold),
            (&scopes.account, self.lockout.account_threshold),
        ];
        let now = self.clock.now();
        let mut seen = [FailureCount::default(); 2];
        let mut longest_wait = None;
        for ((scope, _), count) in limits.iter().zip(&mut seen) {
            *count = self.store.failures(scope).await?;
            if let Some(until) = count.locked_until.filter(|until| *until > now) {
                longest_wait = longest_wait.max(Some(now.until(until)));
            }
        }
        if let Some(retry_after) = longest_wait {
            return Err(AuthError::Locked { retry_after });
        }
        for ((scope, threshold), count) in limits.into_iter().zip(seen) {
            self.claim_one(scope, threshold, count).await?;
        }
        Ok(())
    }

    /// Claims one more failure in `scope` over `seen`, reading again after every lost race.
    async fn claim_one(
        &self,
        scope: &str,
        threshold: u32,
        mut seen: FailureCount,
    ) -> Result<(), AuthError> {
        for _ in 0..MAX_CLAIM_ROUNDS {
            let now = self.clock.now();
            // After a lost race the winner may have locked the scope.
            if let Some(until) = seen.locked_until.filter(|until| *until > now) {
                return Err(AuthError::Locked {
                    retry_after: now.until(until),
                });
            }
            let locked_until: Option<UnixMicros> =
                LockoutPolicy::delay_after(threshold, seen.failures + 1).map(|d| now.plus(d));
            if self
                .store
                .claim_failure(scope, seen, locked_until, now)
                .await?
            {
                return Ok(());
            }
            seen = self.store.failures(scope).await?;
        }
        Err(AuthError::Locked {
            retry_after: FIRST_DELAY,
        })
    }

    /// A right password: the scopes' counts start again.
    pub(super) async fn clear_attempts(&self, scopes: &AttemptScopes) -> Result<(), AuthError> {
        self.store
            .clear_failures([&scopes.with_address, &scopes.account])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_starts_at_the_threshold_and_doubles_up_to_fifteen_minutes() {
        assert_eq!(LockoutPolicy::delay_after(5, 4), None);
        assert_eq!(
            LockoutPolicy::delay_after(5, 5),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            LockoutPolicy::delay_after(5, 6),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            LockoutPolicy::delay_after(5, 9),
            Some(Duration::from_secs(16))
        );
        assert_eq!(LockoutPolicy::delay_after(5, 40), Some(MAX_DELAY));
    }

    #[test]
    fn threshold_zero_disables_the_lockout() {
        assert_eq!(LockoutPolicy::delay_after(0, 1000), None);
    }
}
