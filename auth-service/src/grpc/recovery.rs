//! The handlers of password reset and e-mail verification: each request's fields parsed (a
//! missing field is "This field is required.", an address must be one), then
//! [`Accounts`](crate::service::Accounts)' flow of `service::recovery`.

use proto::auth::v1 as pb;
use service_kit::validation::FieldErrors;
use tonic::{Request, Response};

use super::{
    AuthApi, Reply,
    parse::{parsed, present},
};
use crate::{
    domain::{Email, Password},
    error::AuthError,
};

impl AuthApi {
    pub(super) async fn serve_password_reset_request(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Reply<pb::RequestPasswordResetResponse> {
        let origin = self.origin(&request);
        let email = address(request.into_inner().email)?;
        self.accounts
            .request_password_reset(&email, &origin)
            .await?;
        Ok(Response::new(pb::RequestPasswordResetResponse {}))
    }

    /// dj-rest-auth's order: the `uid`, then the `token`, and only then the new password (a
    /// call without one only checks the link), its rules and its hashing.
    pub(super) async fn serve_password_reset_confirm(
        &self,
        request: Request<pb::ConfirmPasswordResetRequest>,
    ) -> Reply<pb::ConfirmPasswordResetResponse> {
        let origin = self.origin(&request);
        let request = request.into_inner();
        let mut errors = FieldErrors::new();
        let uid = errors.check("uid", present(request.uid));
        let token = errors.check("token", present(request.token));
        let (uid, token) = parsed(errors, uid.zip(token))?;
        let ticket = self.accounts.reset_allowed(&uid, &token).await?;
        let mut errors = FieldErrors::new();
        let password = errors.check(
            "new_password",
            present(request.new_password).and_then(|raw| Password::parse(&raw)),
        );
        let password = parsed(errors, password)?;
        self.accounts
            .reset_password(ticket, password, &origin)
            .await?;
        Ok(Response::new(pb::ConfirmPasswordResetResponse {}))
    }

    pub(super) async fn serve_email_verification(
        &self,
        request: Request<pb::VerifyEmailRequest>,
    ) -> Reply<pb::VerifyEmailResponse> {
        let origin = self.origin(&request);
        let mut errors = FieldErrors::new();
        let key = errors.check("key", present(request.into_inner().key));
        let key = parsed(errors, key)?;
        self.accounts.verify_email(&key, &origin).await?;
        Ok(Response::new(pb::VerifyEmailResponse {}))
    }

    pub(super) async fn serve_verification_resend(
        &self,
        request: Request<pb::ResendEmailVerificationRequest>,
    ) -> Reply<pb::ResendEmailVerificationResponse> {
        let email = address(request.into_inner().email)?;
        self.accounts.resend_verification(&email).await?;
        Ok(Response::new(pb::ResendEmailVerificationResponse {}))
    }
}

/// The `email` field: present and an address.
fn address(value: Option<String>) -> Result<Email, AuthError> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", present(value).and_then(|raw| Email::parse(&raw)));
    parsed(errors, email)
}
