//! The second step of a login with a second factor. A right password gets a challenge: a key
//! like a token's (only its digest is stored), bound to the user, valid [`CHALLENGE_TTL`], and
//! remembering what the login asked for (the caller's route name, whether to open a session)
//! and the user's credentials version then. The challenge and a code complete the login once.
//!
//! A wrong code leaves the challenge usable until it expires, so a mistyped code does not send
//! the user back to the password; each wrong code counts toward the account's lockout (as a
//! wrong password would), which bounds the guesses, and none is checked while it is locked. A
//! withdrawing write between the two steps (a password change, a deactivation, logging out
//! everywhere) leaves the challenge unable to issue anything.

use std::time::Duration;

use service_kit::validation::FieldErrors;

use super::{Accounts, LoginOutcome, login::AttemptScopes};
use crate::{
    domain::{
        TokenKey,
        audit::{Event, EventType, Origin},
    },
    error::AuthError,
    store::{Challenge, UserLookup},
};

pub const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);
const INVALID_CHALLENGE: &str = "Invalid or expired challenge; log in again.";

/// The second step's request, as presented.
#[derive(Debug)]
pub struct MfaCompletion {
    pub challenge: String,
    pub code: String,
    /// Where the attempt comes from: its client for the per-address count, and the trail.
    pub origin: Origin,
}

impl Accounts {
    /// A challenge for user `user_id`, whose right password was just presented.
    pub(super) async fn open_challenge(
        &self,
        user_id: i64,
        credentials_version: i64,
        context: String,
        open_session: bool,
    ) -> Result<TokenKey, AuthError> {
        let key = TokenKey::generate();
        let challenge = Challenge {
            user_id,
            context,
            open_session,
            credentials_version,
        };
        let expires_at = self.clock.now().plus(CHALLENGE_TTL);
        self.store
            .insert_challenge(&key.digest(), challenge, expires_at)
            .await?;
        tracing::info!(user_id, "second factor asked");
        Ok(key)
    }

    /// Completes a login with its challenge and a code: what the login would have answered,
    /// and the route name it was asked with.
    #[tracing::instrument(skip_all)]
    pub async fn complete_mfa_login(
        &self,
        request: MfaCompletion,
    ) -> Result<(LoginOutcome, String), AuthError> {
        let invalid = || AuthError::from(FieldErrors::single("challenge", INVALID_CHALLENGE));
        let digest = TokenKey::parse(&request.challenge)
            .ok_or_else(invalid)?
            .digest();
        let challenge = self
            .store
            .challenge(&digest, self.clock.now())
            .await?
            .ok_or_else(invalid)?;
        let user_id = challenge.user_id;
        let origin = &request.origin;
        let scopes = AttemptScopes::of_user(user_id, origin.client);
        let locked = Event::new(EventType::LoginLocked, self.clock.now(), origin)
            .on(user_id)
            .failed()
            .with("step", "second_factor");
        self.refuse_if_locked(&scopes, &locked).await?;
        self.use_code(user_id, &request.code, &scopes, origin)
            .await?;
        if !self
            .store
            .consume_challenge(&digest, self.clock.now())
            .await?
        {
            return Err(invalid());
        }
        self.admit_success(&scopes, &locked).await?;
        let record = self.store.login_record(&UserLookup::Id(user_id)).await?;
        if !record.is_some_and(|record| record.user.is_active) {
            return Err(AuthError::AccountDisabled);
        }
        let succeeded = Event::new(EventType::LoginSucceeded, self.clock.now(), origin)
            .by_self(user_id)
            .with("session", challenge.open_session)
            .with("second_factor", true);
        let outcome = self
            .admit(
                user_id,
                challenge.credentials_version,
                challenge.open_session,
                &succeeded,
            )
            .await?;
        Ok((outcome, challenge.context))
    }
}
