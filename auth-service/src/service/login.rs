//! Login, and the per-account lockout that slows password guessing. Failures are counted in the
//! database (so the limit holds across replicas), and each attempt claims its count *before*
//! the password is checked, so a burst of concurrent guesses gets no more tries than the
//! threshold.

use std::time::Duration;

use super::{Auth, Issued};
use crate::{
    clock::UnixMicros,
    domain::{CredentialKind, Password, User},
    error::AuthError,
    hashing::Verified,
    store::{LoginRecord, UserLookup},
};

/// The first delay once the threshold is reached; it doubles with each further failure.
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// How long an expired key is still told apart ("Token has expired.") from an unknown one. After
/// that, the user's next login removes it, so keys that are never presented again (and refresh
/// tombstones) do not pile up.
const EXPIRED_KEYS_KEPT: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Bounds the compare-and-set loop; only a storm of concurrent attempts on one account gets
/// near it, and those are answered as locked.
const MAX_CLAIM_ROUNDS: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures in a row before the account is delayed; 0 disables the lockout.
    pub threshold: u32,
}

impl LockoutPolicy {
    /// How long the account waits after its `failures`-th failure in a row.
    pub fn delay_after(self, failures: i64) -> Option<Duration> {
        let threshold = i64::from(self.threshold);
        if self.threshold == 0 || failures < threshold {
            return None;
        }
        let doublings = u32::try_from(failures - threshold)
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
}

#[derive(Debug)]
pub struct LoginOutcome {
    pub user: User,
    pub token: Issued,
    pub session: Option<Issued>,
}

impl Auth {
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, request: LoginRequest) -> Result<LoginOutcome, AuthError> {
        let Some(record) = self.claim_attempt(&request.lookup).await? else {
            // Same cost as a wrong password: no telling which accounts exist by timing.
            self.hasher.verify(&request.password, None).await?;
            return Err(AuthError::InvalidCredentials);
        };
        let user_id = record.user.id;
        let verified = self
            .hasher
            .verify(&request.password, Some(record.password_hash.clone()))
            .await?;
        let Verified::Match { rehashed } = verified else {
            tracing::info!(user_id, failures = record.failed_logins + 1, "failed login");
            return Err(AuthError::InvalidCredentials);
        };
        if let Some(rehashed) = rehashed {
            // Only over the hash just checked: a password set meanwhile stays.
            let upgraded = self
                .store
                .replace_password_hash(user_id, &record.password_hash, rehashed)
                .await?;
            tracing::info!(user_id, upgraded, "password rehashed with argon2id");
        }
        let now = self.clock.now();
        let user = self.store.record_login(user_id, now).await?;
        self.store
            .purge_expired(user_id, now.minus(EXPIRED_KEYS_KEPT))
            .await?;
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        let token = self.issue(user_id, CredentialKind::Token).await?;
        let session = if request.open_session {
            Some(self.issue(user_id, CredentialKind::Session).await?)
        } else {
            None
        };
        tracing::info!(user_id, "login");
        Ok(LoginOutcome {
            user,
            token,
            session,
        })
    }

    /// Finds the account and counts this attempt as a failure until proven otherwise; `None`
    /// for an unknown account. A locked account is refused here, before any hashing.
    async fn claim_attempt(&self, lookup: &UserLookup) -> Result<Option<LoginRecord>, AuthError> {
        for _ in 0..MAX_CLAIM_ROUNDS {
            let Some(record) = self.store.login_record(lookup).await? else {
                return Ok(None);
            };
            let now = self.clock.now();
            if let Some(until) = record.locked_until.filter(|until| *until > now) {
                return Err(AuthError::Locked {
                    retry_after: now.until(until),
                });
            }
            let locked_until: Option<UnixMicros> = self
                .lockout
                .delay_after(record.failed_logins + 1)
                .map(|delay| now.plus(delay));
            if self
                .store
                .claim_login_attempt(record.user.id, record.failed_logins, locked_until)
                .await?
            {
                return Ok(Some(record));
            }
        }
        Err(AuthError::Locked {
            retry_after: FIRST_DELAY,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_starts_at_the_threshold_and_doubles_up_to_fifteen_minutes() {
        let policy = LockoutPolicy { threshold: 5 };
        assert_eq!(policy.delay_after(4), None);
        assert_eq!(policy.delay_after(5), Some(Duration::from_secs(1)));
        assert_eq!(policy.delay_after(6), Some(Duration::from_secs(2)));
        assert_eq!(policy.delay_after(9), Some(Duration::from_secs(16)));
        assert_eq!(policy.delay_after(40), Some(MAX_DELAY));
    }

    #[test]
    fn threshold_zero_disables_the_lockout() {
        assert_eq!(LockoutPolicy { threshold: 0 }.delay_after(1000), None);
    }
}
