//! The service's one error type, and its one mapping to `tonic::Status`. Clients tell failures
//! apart by code and `google.rpc.ErrorInfo` reason (see `proto::reasons`); internal causes are
//! logged here and never sent.

use std::{collections::HashMap, time::Duration};

use proto::{credentials::CredentialsRefused, reasons};
use service_kit::{grpc::with_reason, validation::FieldErrors};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request's fields are wrong; each message is for people.
    #[error("invalid request: {0:?}")]
    Invalid(FieldErrors),
    #[error("Authentication credentials were not provided.")]
    CredentialsMissing,
    #[error("Invalid token.")]
    TokenInvalid,
    #[error("Token has expired.")]
    TokenExpired,
    /// A credential of a deactivated user was presented.
    #[error("User inactive or deleted.")]
    UserInactive,
    #[error("Invalid credentials.")]
    InvalidCredentials,
    /// The right password for a deactivated account.
    #[error("User account is disabled.")]
    AccountDisabled,
    /// Too many failed logins on this account.
    #[error("Too many failed logins; try again later.")]
    Locked { retry_after: Duration },
    #[error("You do not have permission to perform this action.")]
    PermissionDenied,
    #[error("No User matches the given query.")]
    UserNotFound,
    /// The right password for an account whose email is not verified, with
    /// `ACCOUNT_EMAIL_VERIFICATION=mandatory` (dj-rest-auth's words).
    #[error("E-mail is not verified.")]
    EmailNotVerified,
    /// An email verification key that is unknown, used, expired or for an old address; as
    /// dj-rest-auth's view, a 404.
    #[error("Not found.")]
    VerificationKeyInvalid,
    /// A caller whose client certificate names no identity in `REVOCATION_HOLDERS`.
    #[error("Only the verdict caches named in REVOCATION_HOLDERS may watch revocations.")]
    NotAHolder,
    /// A call that needs the caller's identity came without a client certificate.
    #[error("This call needs a client certificate naming the caller.")]
    PeerUnidentified,
    /// Too many password hashes waiting already; the caller may retry after `retry_after`.
    #[error("Too many requests are being processed; try again later.")]
    Overloaded { retry_after: Duration },
    /// The database cannot be reached; the caller may retry.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AuthError {
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }
}

impl From<FieldErrors> for AuthError {
    fn from(errors: FieldErrors) -> Self {
        Self::Invalid(errors)
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(err: sqlx::Error) -> Self {
        service_kit::database::count_error("auth", &err);
        if service_kit::database::is_unavailable(&err) {
            Self::Unavailable(err)
        } else {
            Self::internal(err)
        }
    }
}

/// DRF's answers: no credential, or an `authorization` that cannot be a key (a token
/// that cannot exist).
impl From<CredentialsRefused> for AuthError {
    fn from(refused: CredentialsRefused) -> Self {
        match refused {
            CredentialsRefused::Missing => Self::CredentialsMissing,
            CredentialsRefused::Malformed => Self::TokenInvalid,
        }
    }
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        let message = err.to_string();
        match err {
            AuthError::Invalid(errors) => errors.into(),
            AuthError::CredentialsMissing => with_reason(
                Code::Unauthenticated,
                message,
                reasons::CREDENTIALS_MISSING,
                reasons::DOMAIN,
            ),
            AuthError::TokenInvalid => with_reason(
                Code::Unauthenticated,
                message,
                reasons::TOKEN_INVALID,
                reasons::DOMAIN,
            ),
            AuthError::TokenExpired => with_reason(
                Code::Unauthenticated,
                message,
                reasons::TOKEN_EXPIRED,
                reasons::DOMAIN,
            ),
            AuthError::UserInactive => with_reason(
                Code::Unauthenticated,
                message,
                reasons::USER_INACTIVE,
                reasons::DOMAIN,
            ),
            AuthError::InvalidCredentials => with_reason(
                Code::Unauthenticated,
                message,
                reasons::INVALID_CREDENTIALS,
                reasons::DOMAIN,
            ),
            AuthError::AccountDisabled => with_reason(
                Code::PermissionDenied,
                message,
                reasons::USER_INACTIVE,
                reasons::DOMAIN,
            ),
            AuthError::PermissionDenied => with_reason(
                Code::PermissionDenied,
                message,
                reasons::PERMISSION_DENIED,
                reasons::DOMAIN,
            ),
            AuthError::Locked { retry_after } => {
                let mut details = ErrorDetails::with_retry_info(Some(retry_after));
                details.set_error_info(reasons::ACCOUNT_LOCKED, reasons::DOMAIN, HashMap::new());
                Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            AuthError::EmailNotVerified => with_reason(
                Code::FailedPrecondition,
                message,
                reasons::EMAIL_NOT_VERIFIED,
                reasons::DOMAIN,
            ),
            AuthError::VerificationKeyInvalid => with_reason(
                Code::NotFound,
                message,
                reasons::VERIFICATION_KEY_INVALID,
                reasons::DOMAIN,
            ),
            AuthError::UserNotFound => Status::not_found(message),
            AuthError::NotAHolder => Status::permission_denied(message),
            AuthError::PeerUnidentified => Status::unauthenticated(message),
            AuthError::Overloaded { retry_after } => Status::with_error_details(
                Code::Unavailable,
                message,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            AuthError::Unavailable(cause) => {
                tracing::error!(error = %cause, "database unavailable");
                Status::unavailable("the auth database is unavailable")
            }
            AuthError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
