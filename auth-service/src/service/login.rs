//! Login, and the lockout that slows password guessing. Failures are counted in the database
//! (so the limit holds across replicas) in two scopes: the identifier typed (a username or an
//! email) with one client address, and, with a looser ceiling, the account alone, so that a
//! guesser at one address neither locks the owner out elsewhere nor gets unlimited tries from
//! many. Counting per address by what was typed (not by the account it names) keeps the lockout
//! from telling that a username and an email are one account. An unknown name is counted the
//! same way, by the name, so the answers (status and timing) never tell which accounts exist.
//!
//! An attempt is refused before any hashing while a scope is locked; otherwise its password is
//! checked, and the verdict decides: a wrong password counts (a compare-and-set per scope, so
//! concurrent failures each get a distinct count, and the one that reaches the threshold locks),
//! a right one clears the counts. Either is answered as locked if the scope locked while it was
//! being checked. So a right password never counts toward the lockout, however many arrive at
//! once, and a guesser learns at most the threshold's number of verdicts before the lock.
//!
//! For a user with a confirmed second factor a right password admits nothing yet: the login
//! answers a challenge (`mfa_login`), and the account's counts are cleared only when a code
//! completes it, so that a guesser of codes who knows the password cannot reset the count by
//! logging in again; only the count of wrong passwords for the name typed is cleared.

use std::{net::IpAddr, time::Duration};

use super::{Accounts, Issued};
use crate::{
    clock::UnixMicros,
    config::recovery::Verification,
    domain::{
        CredentialKind, Password, TokenKey, User,
        audit::{Event, EventType, Origin},
    },
    error::AuthError,
    hashing::Verified,
    metrics::{self, Login},
    store::UserLookup,
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
    /// Where the attempt comes from: its client for the per-address count, and the trail.
    pub origin: Origin,
    /// The caller's opaque name for what it asked (the gateway's route), kept with a
    /// second-factor challenge and given back when the challenge is completed.
    pub route: String,
}

/// What a right password gets.
#[derive(Debug)]
pub enum LoginAnswer {
    Admitted(LoginOutcome),
    /// The user has a second factor: this challenge, with a code, completes the login.
    SecondFactor(TokenKey),
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
    /// A login also waits out the lock that wrong old passwords put on the account at this
    /// address (`user:<id>@address`), and clears it when it succeeds; it does not count there.
    also_checked: Option<String>,
}

impl AttemptScopes {
    /// `typed` names what the client typed, counted with its address; `account` the account
    /// (`user:<id>`) or, for an unknown one, the name as typed.
    fn new(typed: &str, account: String, client: Option<IpAddr>) -> Self {
        let address = client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        Self {
            with_address: format!("{typed}@{address}"),
            account,
            also_checked: None,
        }
    }

    /// An attempt that names the account itself (a signed-in user's old password).
    pub(super) fn of_user(user_id: i64, client: Option<IpAddr>) -> Self {
        let account = format!("user:{user_id}");
        Self::new(&account, account.clone(), client)
    }

    fn of_login(lookup: &UserLookup, user_id: Option<i64>, client: Option<IpAddr>) -> Self {
        let typed = match lookup {
            UserLookup::Username(username) => format!("username:{}", username.key()),
            UserLookup::Email(email) => format!("email:{}", email.key()),
            UserLookup::Id(id) => format!("user:{id}"),
        };
        let account = user_id.map_or_else(|| typed.clone(), |id| format!("user:{id}"));
        let mut scopes = Self::new(&typed, account, client);
        scopes.also_checked = user_id.map(|id| Self::of_user(id, client).with_address);
        scopes
    }

    /// Every scope that may lock the attempt out, and that a success clears (without a third,
    /// the first stands in for it).
    fn all(&self) -> [&str; 3] {
        let third = self.also_checked.as_ref().unwrap_or(&self.with_address);
        [&self.with_address, &self.account, third]
    }

    /// The count of wrong passwords for what was typed from this address, alone.
    fn typed_only(&self) -> [&str; 3] {
        [&self.with_address; 3].map(String::as_str)
    }
}

impl Accounts {
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, request: LoginRequest) -> Result<LoginAnswer, AuthError> {
        let outcome = self.check_login(request).await;
        match &outcome {
            Ok(_) => metrics::login(Login::Ok),
            Err(AuthError::Locked { .. }) => metrics::login(Login::Locked),
            Err(AuthError::InvalidCredentials | AuthError::AccountDisabled) => {
                metrics::login(Login::Failed);
            }
            Err(_) => {}
        }
        outcome
    }

    async fn check_login(&self, request: LoginRequest) -> Result<LoginAnswer, AuthError> {
        let record = self.store.login_record(&request.lookup).await?;
        let user_id = record.as_ref().map(|record| record.user.id);
        let scopes = AttemptScopes::of_login(&request.lookup, user_id, request.origin.client);
        let attempt = |kind| {
            let event = Event::new(kind, self.clock.now(), &request.origin)
                .with("by", request.lookup.named_by());
            match user_id {
                Some(id) => event.on(id),
                None => event,
            }
        };
        let locked = attempt(EventType::LoginLocked).failed();
        self.refuse_if_locked(&scopes, &locked).await?;
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
            let reason = if user_id.is_some() {
                "wrong_password"
            } else {
                "unknown_account"
            };
            let failed = attempt(EventType::LoginFailed).failed();
            self.count_failure(&scopes, failed.with("reason", reason))
                .await?;
            return Err(AuthError::InvalidCredentials);
        };
        let user_id = record.user.id;
        let second_factor = self.has_second_factor(user_id).await?;
        if second_factor {
            self.refuse_if_locked(&scopes, &locked).await?;
            self.store.clear_failures(scopes.typed_only()).await?;
        } else {
            self.admit_success(&scopes, &locked).await?;
        }
        if let Some(rehashed) = rehashed {
            // Only over the hash just checked: a password set meanwhile stays.
            let upgraded = self
                .store
                .replace_password_hash(user_id, &record.password_hash, rehashed)
                .await?;
            tracing::info!(user_id, upgraded, "password rehashed with argon2id");
        }
        if !record.user.is_active {
            let inactive = attempt(EventType::LoginFailed).failed();
            self.store
                .record_event(&inactive.with("reason", "inactive"))
                .await?;
            return Err(AuthError::AccountDisabled);
        }
        if self.recovery.verification == Verification::Mandatory
            && record.user.email.is_some()
            && !record.email_verified
        {
            let unverified = attempt(EventType::LoginFailed).failed();
            self.store
                .record_event(&unverified.with("reason", "email_not_verified"))
                .await?;
            return Err(AuthError::EmailNotVerified);
        }
        let version = record.credentials_version;
        if second_factor {
            let challenge = self
                .open_challenge(user_id, version, request.route, request.open_session)
                .await?;
            return Ok(LoginAnswer::SecondFactor(challenge));
        }
        let succeeded = attempt(EventType::LoginSucceeded)
            .by(user_id)
            .with("session", request.open_session);
        let outcome = self
            .admit(user_id, version, request.open_session, &succeeded)
            .await?;
        Ok(LoginAnswer::Admitted(outcome))
    }

    /// A login that passed every check: a token (and a session) issued at the user's
    /// credentials `version` as it was read before the checks, and `last_login` stamped with
    /// `succeeded` recorded.
    pub(super) async fn admit(
        &self,
        user_id: i64,
        version: i64,
        open_session: bool,
        succeeded: &Event,
    ) -> Result<LoginOutcome, AuthError> {
        let lost_race = || AuthError::InvalidCredentials;
        let token = self
            .issue(user_id, CredentialKind::Token, version, lost_race)
            .await?;
        let session = if open_session {
            Some(
                self.issue(user_id, CredentialKind::Session, version, lost_race)
                    .await?,
            )
        } else {
            None
        };
        let user = self.store.record_login(user_id, succeeded).await?;
        tracing::info!(user_id, "login");
        Ok(LoginOutcome {
            user,
            token,
            session,
        })
    }

    /// Learns what checking each kind of stored password hash costs, so that every failed
    /// check costs the same (`hashing::floor`). Run once at start, before any call.
    pub async fn learn_hash_costs(&self) {
        match self.store.foreign_hash_sample().await {
            Ok(sample) => self.hasher.learn_costs(sample).await,
            Err(err) => tracing::warn!(%err, "the stored password hashes could not be sampled"),
        }
    }

    /// Refuses the attempt, before any hashing, while any of its scopes is locked, recording
    /// `refused` (with the wait) when it does.
    pub(super) async fn refuse_if_locked(
        &self,
        scopes: &AttemptScopes,
        refused: &Event,
    ) -> Result<(), AuthError> {
        if self.lockout.threshold == 0 {
            return Ok(());
        }
        let now = self.clock.now();
        match self.store.latest_lock(scopes.all()).await? {
            Some(until) if until > now => {
                let retry_after = now.until(until);
                let refused = refused
                    .clone()
                    .with("retry_after_seconds", retry_after.as_secs_f64().ceil());
                self.store.record_event(&refused).await?;
                Err(AuthError::Locked { retry_after })
            }
            _ => Ok(()),
        }
    }

    /// A wrong password: one more failure in both scopes, locking each that reaches its
    /// threshold, and `failed` recorded with the first count that lands. If a scope locked
    /// while this one was checked, the attempt is answered as locked (its verdict is not told)
    /// and not counted there; counted nowhere, `failed` is recorded alone, marked `locked`.
    pub(super) async fn count_failure(
        &self,
        scopes: &AttemptScopes,
        failed: Event,
    ) -> Result<(), AuthError> {
        if self.lockout.threshold == 0 {
            return self.store.record_event(&failed).await;
        }
        let limits = [
            (&scopes.with_address, self.lockout.threshold),
            (&scopes.account, self.lockout.account_threshold),
        ];
        let (mut locked, mut pending) = (None, Some(failed));
        for (scope, threshold) in limits {
            match self.claim_one(scope, threshold, pending.as_ref()).await {
                Ok(()) => pending = None,
                Err(err) => {
                    locked.get_or_insert(err);
                }
            }
        }
        if let Some(failed) = pending {
            self.store
                .record_event(&failed.with("locked", true))
                .await?;
        }
        locked.map_or(Ok(()), Err)
    }

    /// Counts one more failure in `scope`, reading again after every lost race; `event`, if
    /// any, is recorded with the count (marked with the lock it starts).
    async fn claim_one(
        &self,
        scope: &str,
        threshold: u32,
        event: Option<&Event>,
    ) -> Result<(), AuthError> {
        for _ in 0..MAX_CLAIM_ROUNDS {
            let seen = self.store.failures(scope).await?;
            let now = self.clock.now();
            if let Some(until) = seen.locked_until.filter(|until| *until > now) {
                return Err(AuthError::Locked {
                    retry_after: now.until(until),
                });
            }
            let delay = LockoutPolicy::delay_after(threshold, seen.failures + 1);
            let locked_until: Option<UnixMicros> = delay.map(|d| now.plus(d));
            let event = event.map(|event| match delay {
                Some(delay) => event.clone().with("locks_for_seconds", delay.as_secs()),
                None => event.clone(),
            });
            if self
                .store
                .claim_failure(scope, seen, locked_until, now, event.as_ref())
                .await?
            {
                if locked_until.is_some() {
                    metrics::locked_out();
                }
                return Ok(());
            }
        }
        Err(AuthError::Locked {
            retry_after: FIRST_DELAY,
        })
    }

    /// A right password: admitted unless a scope locked while it was checked (then it is
    /// answered as locked, `refused` recorded, not counted); the scopes' counts start again.
    pub(super) async fn admit_success(
        &self,
        scopes: &AttemptScopes,
        refused: &Event,
    ) -> Result<(), AuthError> {
        self.refuse_if_locked(scopes, refused).await?;
        self.store.clear_failures(scopes.all()).await
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
