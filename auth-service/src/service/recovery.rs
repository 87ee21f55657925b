//! Account recovery by mail: password reset (dj-rest-auth's flow) and e-mail verification
//! (allauth's `ACCOUNT_EMAIL_VERIFICATION`). Every message is enqueued in the transaction of
//! the change it belongs to (`crate::mail`); the answer to a request for one is the same, at
//! the same cost, whether or not the address has an account: both kinds of request count one
//! mail against the typed address's hourly budget in one transaction, and only an existing,
//! active account's also writes its token and its message there.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sqlx::AnyConnection;

use super::Accounts;
use crate::{
    clock::UnixMicros,
    config::recovery::Verification,
    domain::{
        Email, Password, TokenDigest, TokenKey, User,
        audit::{Event, EventType, Origin},
    },
    error::AuthError,
    mail::templates,
    revocations::Revocation,
    store::audit,
    store::{ResetRefused, Store},
};
use service_kit::validation::FieldErrors;

/// At most this many reset (and, apart, verification) messages to one address per
/// [`MAIL_WINDOW`]; further requests are answered alike and send nothing, so nobody can flood
/// an inbox through the service.
const MAIL_BUDGET: i64 = 10;
const MAIL_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// dj-rest-auth's words for a bad `uid` or `token`.
pub const INVALID_VALUE: &str = "Invalid value";

/// A reset token found good, for [`Accounts::reset_password`].
#[derive(Debug)]
pub struct ResetTicket {
    user_id: i64,
    digest: TokenDigest,
}

impl Accounts {
    /// Mails a reset link to the active account with `email`, if there is one; the same
    /// answer either way.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(
        &self,
        email: &Email,
        origin: &Origin,
    ) -> Result<(), AuthError> {
        let target = self.store.mail_target(email).await?;
        let now = self.clock.now();
        let mut requested = Event::new(EventType::PasswordResetRequested, now, origin);
        if let Some(target) = &target {
            requested = requested.on(target.user_id);
        }
        let mut tx = self.store.pool().begin().await?;
        let sent = Store::count_mail(&mut tx, "reset", &email.key(), now, MAIL_WINDOW).await?;
        let mut enqueued = false;
        if let Some(target) = target
            && target.is_active
            && sent <= MAIL_BUDGET
        {
            let key = TokenKey::generate();
            let expires_at = now.plus(self.recovery.reset_timeout);
            Store::insert_reset(&mut tx, &key.digest(), &target, expires_at).await?;
            let link = self
                .recovery
                .reset_link(&encode_uid(target.user_id), key.expose());
            let site = &self.outbox.settings().site_name;
            let letter = templates::password_reset(site, &target.address, &target.account, &link);
            self.outbox
                .enqueue(&mut tx, &letter, UnixMicros::now())
                .await?;
            enqueued = true;
        }
        audit::record(&mut *tx, &requested.with("mailed", enqueued)).await?;
        tx.commit().await?;
        if enqueued {
            self.outbox.committed();
            tracing::info!("password reset mail enqueued");
        }
        Ok(())
    }

    /// Checks a reset link's `uid` and `token` before any password is hashed: dj-rest-auth's
    /// field errors for an unknown user or a token that is not live.
    pub async fn reset_allowed(&self, uid: &str, token: &str) -> Result<ResetTicket, AuthError> {
        let user_id = decode_uid(uid).ok_or_else(|| FieldErrors::single("uid", INVALID_VALUE))?;
        // A malformed token matches no digest, but the user is still checked first.
        let digest =
            TokenKey::parse(token).map_or_else(|| TokenDigest(String::new()), |k| k.digest());
        match self
            .store
            .check_reset(user_id, &digest, self.clock.now())
            .await?
        {
            Ok(()) => Ok(ResetTicket { user_id, digest }),
            Err(ResetRefused::NoSuchUser) => Err(FieldErrors::single("uid", INVALID_VALUE).into()),
            Err(ResetRefused::BadToken) => Err(FieldErrors::single("token", INVALID_VALUE).into()),
        }
    }

    /// Sets `new` as the password with the token `ticket` checked; the token is used up, and
    /// every credential of the user is revoked (the verdict caches have dropped them when this
    /// returns). Of two racing uses of one token, one wins; the other is refused as a bad token.
    #[tracing::instrument(skip_all, fields(user_id = ticket.user_id))]
    pub async fn reset_password(
        &self,
        ticket: ResetTicket,
        new: Password,
        origin: &Origin,
    ) -> Result<(), AuthError> {
        let hash = self.hasher.hash(&new).await?;
        let reset =
            Event::new(EventType::PasswordReset, self.clock.now(), origin).by_self(ticket.user_id);
        let revoked = self
            .store
            .reset_password(ticket.user_id, &ticket.digest, hash, &reset)
            .await?
            .ok_or_else(|| FieldErrors::single("token", INVALID_VALUE))?;
        self.revocations
            .publish(Revocation::User(ticket.user_id))
            .await;
        tracing::info!(revoked, "password reset");
        Ok(())
    }

    /// Within a sign-up's (or an email change's) transaction: marks `user`'s address as not
    /// verified and, unless verification is off, enqueues its verification message. Whether a
    /// message was enqueued (the caller tells the outbox after its commit).
    pub(super) async fn ask_to_verify(
        &self,
        conn: &mut AnyConnection,
        user: &User,
        now: UnixMicros,
    ) -> Result<bool, AuthError> {
        let Some(address) = &user.email else {
            return Ok(false);
        };
        Store::mark_unverified(conn, user.id).await?;
        if self.recovery.verification == Verification::None {
            return Ok(false);
        }
        let account = user.username.as_deref().unwrap_or(address);
        let email_key = address.to_lowercase();
        self.enqueue_verification(conn, user.id, address, account, &email_key, now)
            .await?;
        Ok(true)
    }

    async fn enqueue_verification(
        &self,
        conn: &mut AnyConnection,
        user_id: i64,
        address: &str,
        account: &str,
        email_key: &str,
        now: UnixMicros,
    ) -> Result<(), AuthError> {
        let key = TokenKey::generate();
        let expires_at = now.plus(self.recovery.verification_expiry);
        Store::insert_verification(conn, &key.digest(), user_id, email_key, expires_at).await?;
        let link = self.recovery.verification_link(key.expose());
        let site = &self.outbox.settings().site_name;
        let letter = templates::email_confirmation(site, address, account, &link, key.expose());
        self.outbox.enqueue(conn, &letter, UnixMicros::now()).await
    }

    /// Marks the address a verification key was mailed to as verified.
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, key: &str, origin: &Origin) -> Result<(), AuthError> {
        let key = TokenKey::parse(key).ok_or(AuthError::VerificationKeyInvalid)?;
        let verified = Event::new(EventType::EmailVerified, self.clock.now(), origin);
        let user_id = self
            .store
            .verify_email(&key.digest(), &verified)
            .await?
            .ok_or(AuthError::VerificationKeyInvalid)?;
        tracing::info!(user_id, "email verified");
        Ok(())
    }

    /// Mails a new verification key to the unverified, active account with `email`, if there
    /// is one; the same answer either way.
    #[tracing::instrument(skip_all)]
    pub async fn resend_verification(&self, email: &Email) -> Result<(), AuthError> {
        let target = self.store.mail_target(email).await?;
        let now = self.clock.now();
        let mut tx = self.store.pool().begin().await?;
        let sent = Store::count_mail(&mut tx, "verify", &email.key(), now, MAIL_WINDOW).await?;
        let mut enqueued = false;
        if let Some(target) = target
            && target.is_active
            && !target.email_verified
            && sent <= MAIL_BUDGET
        {
            let (id, address, account) = (target.user_id, &target.address, &target.account);
            self.enqueue_verification(&mut tx, id, address, account, target.email_key(), now)
                .await?;
            enqueued = true;
        }
        tx.commit().await?;
        if enqueued {
            self.outbox.committed();
        }
        Ok(())
    }

    /// Deletes messages older than a week and expired reset tokens and verification keys.
    pub async fn purge_recovery(&self) -> Result<(u64, u64), AuthError> {
        let week = std::time::Duration::from_secs(7 * 86_400);
        let letters = self
            .store
            .purge_letters(UnixMicros::now().minus(week))
            .await?;
        let tokens = self.store.purge_recovery(self.clock.now()).await?;
        Ok((letters, tokens))
    }
}

/// A user id as Django's reset links carry it: URL-safe base64 of its decimal digits.
pub fn encode_uid(user_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(user_id.to_string())
}

fn decode_uid(uid: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(uid.trim_end_matches('=')).ok()?;
    let id: i64 = std::str::from_utf8(&bytes).ok()?.parse().ok()?;
    (id > 0).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_djangos() {
        // urlsafe_base64_encode(force_bytes(1)) == "MQ", of 42: "NDI".
        assert_eq!(encode_uid(1), "MQ");
        assert_eq!(encode_uid(42), "NDI");
        assert_eq!(decode_uid("NDI"), Some(42));
        for bad in ["", "!!", "LTE", "YWJj", "MA"] {
            assert_eq!(decode_uid(bad), None, "{bad}");
        }
    }
}
