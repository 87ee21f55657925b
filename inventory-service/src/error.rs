//! Everything a call can fail with, and the one place that turns it into a gRPC status. Clients
//! branch on the code and the `google.rpc` details; internal causes are logged here and never
//! leave the service.

use proto::{credentials::CredentialsRefused, reasons};
use service_kit::{database, grpc::with_reason, validation::FieldErrors};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The request's fields, as DRF-style field violations.
    #[error("invalid request: {0:?}")]
    Invalid(FieldErrors),
    #[error("no such product")]
    ProductNotFound,
    /// The adjustment would leave less than nothing; nothing was changed.
    #[error("insufficient stock")]
    InsufficientStock,
    /// No `authorization` metadata, or a scheme that is no credential at all (e.g. `Basic`).
    #[error("no credentials")]
    CredentialsMissing,
    /// An `authorization` value that cannot be a key (nothing after the scheme, spaces inside).
    #[error("malformed credentials")]
    CredentialsMalformed,
    /// Auth said UNAUTHENTICATED; its status (with its reason) goes back to the caller as is.
    #[error("credentials rejected by auth: {}", .0.message())]
    CredentialsRejected(Status),
    /// Authenticated, but not allowed to do this.
    #[error("permission denied")]
    PermissionDenied,
    /// Auth could not be reached in time. Nothing is served unchecked.
    #[error("auth unreachable: {0}")]
    AuthUnavailable(Status),
    /// Auth answered something it never should (a bug on one side or the other).
    #[error("unexpected answer from auth: {0}")]
    AuthFailed(Status),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<CredentialsRefused> for InventoryError {
    fn from(refused: CredentialsRefused) -> Self {
        match refused {
            CredentialsRefused::Missing => Self::CredentialsMissing,
            CredentialsRefused::Malformed => Self::CredentialsMalformed,
        }
    }
}

/// Auth's own shape for "who are you?" answers, so that clients see one vocabulary whichever
/// service rejected them.
fn unauthenticated(message: &str, reason: &str) -> Status {
    with_reason(Code::Unauthenticated, message, reason, reasons::DOMAIN)
}

impl From<InventoryError> for Status {
    fn from(error: InventoryError) -> Self {
        if let InventoryError::Database(err) = &error {
            service_kit::database::count_error("inventory", err);
        }
        match error {
            InventoryError::Invalid(errors) => errors.into(),
            InventoryError::ProductNotFound => {
                Status::not_found("No Product matches the given query.")
            }
            InventoryError::InsufficientStock => with_reason(
                Code::FailedPrecondition,
                "Insufficient stock.",
                reasons::inventory::INSUFFICIENT_STOCK,
                reasons::inventory::DOMAIN,
            ),
            InventoryError::CredentialsMissing => unauthenticated(
                "Authentication credentials were not provided.",
                reasons::CREDENTIALS_MISSING,
            ),
            InventoryError::CredentialsMalformed => {
                unauthenticated("Invalid token header.", reasons::TOKEN_INVALID)
            }
            // Rebuilt from code, message and details only: the rest of auth's metadata
            // describes the hop between the services, not the caller's request.
            InventoryError::CredentialsRejected(status) => Status::with_details(
                status.code(),
                status.message(),
                status.details().to_vec().into(),
            ),
            InventoryError::PermissionDenied => with_reason(
                Code::PermissionDenied,
                "You do not have permission to perform this action.",
                reasons::PERMISSION_DENIED,
                reasons::DOMAIN,
            ),
            InventoryError::AuthUnavailable(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "auth unreachable");
                Status::unavailable("The authentication service is unavailable.")
            }
            InventoryError::AuthFailed(status) => {
                tracing::error!(code = ?status.code(), message = status.message(), "unexpected answer from auth");
                Status::internal("A server error occurred.")
            }
            InventoryError::Database(err) if database::is_unavailable(&err) => {
                tracing::warn!(%err, "database unavailable");
                Status::unavailable("The database is unavailable.")
            }
            InventoryError::Database(err) => {
                tracing::error!(%err, "database error");
                Status::internal("A server error occurred.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn auth_verdicts_keep_their_details() {
        let from_auth = with_reason(
            Code::Unauthenticated,
            "Token has expired.",
            reasons::TOKEN_EXPIRED,
            reasons::DOMAIN,
        );
        let passed_on = Status::from(InventoryError::CredentialsRejected(from_auth));
        assert_eq!(passed_on.code(), Code::Unauthenticated);
        assert_eq!(passed_on.message(), "Token has expired.");
        let info = passed_on
            .get_error_details()
            .error_info()
            .cloned()
            .expect("ErrorInfo");
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            (reasons::TOKEN_EXPIRED, reasons::DOMAIN)
        );
    }

    #[test]
    fn internals_stay_inside() {
        let status = Status::from(InventoryError::Database(sqlx::Error::Protocol(
            "SELECT secret FROM somewhere".to_owned(),
        )));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "A server error occurred.");
        let status = Status::from(InventoryError::AuthUnavailable(Status::unavailable(
            "tcp connect error 10.0.0.7:50051",
        )));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("10.0.0.7"));
    }
}
