//! The second factor's lifecycle: enrolment (pending until a first code confirms it, which
//! issues the recovery codes), disabling by the user, an admin's reset, and the one check of a
//! presented code that every step shares ([`Accounts::use_code`]).
//!
//! A TOTP code is accepted for the current 30 s step or one either side (clock skew), and only
//! for a step later than the last one accepted: a code is never accepted twice, even within its
//! step. A recovery code is accepted once. A wrong code counts toward the login lockout as a
//! wrong password does (scopes of the account, with and without the client address), and none
//! is checked while the account is locked.
//!
//! Each change records its event in its own transaction: `mfa.enrolled`, `mfa.used` (a code
//! accepted, with its kind), `mfa.failed` (counted with the failure), `mfa.disabled` and
//! `mfa.reset`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::ExposeSecret;
use service_kit::validation::FieldErrors;

use super::{Accounts, login::AttemptScopes};
use crate::{
    domain::{
        FactorCode, Password, Principal, RECOVERY_CODES, RecoveryCode,
        audit::{Event, EventType, Origin},
    },
    error::AuthError,
    store::UserLookup,
    totp::{self, DIGITS, STEP_SECONDS, TotpSecret},
};

const INVALID_CODE: &str = "Invalid or already used code.";
const WRONG_PASSWORD: &str = "Wrong password.";
const ALREADY_ENABLED: &str =
    "Two-factor authentication is already enabled; disable it before enrolling again.";
const NOT_PENDING: &str = "No two-factor enrolment is pending.";
const NOT_ENABLED: &str = "Two-factor authentication is not enabled.";
const CODE_OR_PASSWORD: &str = "Give a code or the password.";
/// What the otpauth label and issuer keep as they are: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A new enrolment's secret, and the URL an app reads it from.
#[derive(Debug)]
pub struct Enrolment {
    pub secret: TotpSecret,
    pub otpauth_url: String,
}

/// How a user proves who they are to disable their factor.
#[derive(Debug)]
pub enum DisableProof {
    Code(String),
    Password(Password),
}

impl Accounts {
    /// Starts the caller's enrolment with a new secret, replacing a pending one.
    #[tracing::instrument(skip_all, fields(user_id = principal.user.id))]
    pub async fn begin_totp_enrolment(
        &self,
        principal: &Principal,
    ) -> Result<Enrolment, AuthError> {
        let user = &principal.user;
        let secret = TotpSecret::generate();
        if !self
            .store
            .begin_totp(user.id, &secret, self.clock.now())
            .await?
        {
            return Err(FieldErrors::single("non_field_errors", ALREADY_ENABLED).into());
        }
        let account = user.username.as_ref().or(user.email.as_ref());
        let account = account.map_or_else(|| user.id.to_string(), Clone::clone);
        let otpauth_url = otpauth_url(&self.mfa_issuer, &account, &secret);
        tracing::info!("TOTP enrolment started");
        Ok(Enrolment {
            secret,
            otpauth_url,
        })
    }

    /// Confirms the caller's pending enrolment with a code of its secret: the factor is on, and
    /// these are its recovery codes (shown this once).
    #[tracing::instrument(skip_all, fields(user_id = principal.user.id))]
    pub async fn confirm_totp_enrolment(
        &self,
        principal: &Principal,
        origin: &Origin,
        code: &str,
    ) -> Result<Vec<String>, AuthError> {
        let user_id = principal.user.id;
        let scopes = AttemptScopes::of_user(user_id, origin.client);
        let event = |kind| Event::new(kind, self.clock.now(), origin).by_self(user_id);
        let locked = event(EventType::MfaFailed).failed().with("locked", true);
        self.refuse_if_locked(&scopes, &locked).await?;
        let pending = self.store.totp_factor(user_id).await?;
        let Some(factor) = pending.filter(|factor| !factor.confirmed) else {
            return Err(FieldErrors::single("non_field_errors", NOT_PENDING).into());
        };
        let failed = event(EventType::MfaFailed).failed();
        let Some(step) = self.matching_step(&factor.secret, code) else {
            return Err(self.wrong(&scopes, failed, "code", INVALID_CODE).await);
        };
        let codes: Vec<RecoveryCode> = (0..RECOVERY_CODES)
            .map(|_| RecoveryCode::generate())
            .collect();
        let digests = codes.iter().map(RecoveryCode::digest).collect();
        let enrolled = event(EventType::MfaEnrolled);
        if !self
            .store
            .confirm_totp(user_id, &factor.secret, step, digests, &enrolled)
            .await?
        {
            // Confirmed or replaced since it was read: this code is not for the enrolment there is.
            return Err(self.wrong(&scopes, failed, "code", INVALID_CODE).await);
        }
        self.admit_success(&scopes, &locked).await?;
        tracing::info!("TOTP enrolment confirmed");
        Ok(codes.iter().map(RecoveryCode::shown).collect())
    }

    /// Removes the caller's factor, given a code of it or the caller's password.
    #[tracing::instrument(skip_all, fields(user_id = principal.user.id))]
    pub async fn disable_totp(
        &self,
        principal: &Principal,
        origin: &Origin,
        proof: Option<DisableProof>,
    ) -> Result<(), AuthError> {
        let user_id = principal.user.id;
        let proof =
            proof.ok_or_else(|| FieldErrors::single("non_field_errors", CODE_OR_PASSWORD))?;
        let scopes = AttemptScopes::of_user(user_id, origin.client);
        let event = |kind| Event::new(kind, self.clock.now(), origin).by_self(user_id);
        let locked = event(EventType::MfaFailed).failed().with("locked", true);
        self.refuse_if_locked(&scopes, &locked).await?;
        if self.store.totp_factor(user_id).await?.is_none() {
            return Err(FieldErrors::single("non_field_errors", NOT_ENABLED).into());
        }
        match proof {
            DisableProof::Code(code) => self.use_code(user_id, &code, &scopes, origin).await?,
            DisableProof::Password(password) => {
                let record = self.store.login_record(&UserLookup::Id(user_id)).await?;
                let hash = record.ok_or(AuthError::TokenInvalid)?.password_hash;
                if !self.hasher.verify(&password, Some(hash)).await?.matches() {
                    let failed = event(EventType::MfaFailed)
                        .failed()
                        .with("reason", "wrong_password");
                    return Err(self
                        .wrong(&scopes, failed, "password", WRONG_PASSWORD)
                        .await);
                }
                self.admit_success(&scopes, &locked).await?;
            }
        }
        self.store
            .remove_totp(user_id, &event(EventType::MfaDisabled))
            .await?;
        tracing::info!("TOTP disabled");
        Ok(())
    }

    /// An admin's reset of user `id`'s factor (a superuser's only by a superuser).
    #[tracing::instrument(skip_all, fields(user_id = id))]
    pub async fn reset_second_factor(
        &self,
        principal: &Principal,
        id: i64,
        origin: &Origin,
    ) -> Result<(), AuthError> {
        if !principal.user.can_manage_users() {
            return Err(AuthError::PermissionDenied);
        }
        let user = self.store.user(id).await?;
        if user.is_superuser && !principal.user.is_superuser {
            return Err(AuthError::PermissionDenied);
        }
        let reset = Event::new(EventType::MfaReset, self.clock.now(), origin)
            .by(principal.user.id)
            .on(id);
        let removed = self.store.remove_totp(id, &reset).await?;
        tracing::info!(by = principal.user.id, removed, "second factor reset");
        Ok(())
    }

    /// Whether user `user_id` logs in with a second factor.
    pub(super) async fn has_second_factor(&self, user_id: i64) -> Result<bool, AuthError> {
        let factor = self.store.totp_factor(user_id).await?;
        Ok(factor.is_some_and(|factor| factor.confirmed))
    }

    /// Checks `raw`, a TOTP or recovery code of the user's confirmed factor, and uses it up; a
    /// wrong one counts in `scopes` (checked for a lock by the caller) and is a field error of
    /// `code`.
    pub(super) async fn use_code(
        &self,
        user_id: i64,
        raw: &str,
        scopes: &AttemptScopes,
        origin: &Origin,
    ) -> Result<(), AuthError> {
        let event = |kind| Event::new(kind, self.clock.now(), origin).by_self(user_id);
        let accepted = match FactorCode::parse(raw) {
            Some(FactorCode::Totp(code)) => {
                let factor = self.store.totp_factor(user_id).await?;
                match factor.filter(|factor| factor.confirmed) {
                    Some(factor) => {
                        match self.matching_step(&factor.secret, code.expose_secret()) {
                            Some(step) => {
                                let used = event(EventType::MfaUsed).with("kind", "totp");
                                self.store.accept_totp_step(user_id, step, &used).await?
                            }
                            None => false,
                        }
                    }
                    None => false,
                }
            }
            Some(FactorCode::Recovery(code)) => {
                let used = event(EventType::MfaUsed).with("kind", "recovery");
                self.store
                    .use_recovery_code(user_id, code.digest(), &used)
                    .await?
            }
            None => false,
        };
        if !accepted {
            let failed = event(EventType::MfaFailed).failed();
            return Err(self.wrong(scopes, failed, "code", INVALID_CODE).await);
        }
        Ok(())
    }

    /// The step within one of now whose code `code` is, the latest if several.
    fn matching_step(&self, secret: &TotpSecret, code: &str) -> Option<i64> {
        if code.len() != DIGITS as usize {
            return None;
        }
        let now = totp::step_of(self.clock.now().0.div_euclid(1_000_000));
        [now + 1, now, now - 1]
            .into_iter()
            .find(|&step| secret.matches(step, code))
    }

    /// A wrong code or password: counted, and answered as a field error of `field`, or as
    /// locked if the count locked the account.
    async fn wrong(
        &self,
        scopes: &AttemptScopes,
        failed: Event,
        field: &str,
        message: &str,
    ) -> AuthError {
        match self.count_failure(scopes, failed).await {
            Ok(()) => FieldErrors::single(field, message).into(),
            Err(err) => err,
        }
    }
}

/// Google Authenticator's key URI: `otpauth://totp/<issuer>:<account>?secret=..&issuer=..`.
fn otpauth_url(issuer: &str, account: &str, secret: &TotpSecret) -> String {
    let escape = |text| utf8_percent_encode(text, UNRESERVED);
    let (issuer, account) = (escape(issuer), escape(account));
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
         &algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        secret = secret.base32(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_otpauth_url_escapes_the_issuer_and_the_account() {
        let secret = TotpSecret::from_base32("GEZDGNBV").expect("base32");
        assert_eq!(
            otpauth_url("My Shop", "ann@example.com", &secret),
            "otpauth://totp/My%20Shop:ann%40example.com?secret=GEZDGNBV&issuer=My%20Shop\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
