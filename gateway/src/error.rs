//! The one error type of the gateway, [`ApiError`], and the one place where errors become HTTP
//! responses in DRF's shapes and words. The gRPC → HTTP table ([`ApiError::from_status`]) is
//! here too, written once for both services; each case's words are in [`reasons`].

use std::time::Duration;

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Map, Value, json};
use service_kit::validation::FieldErrors;
use tonic::{Code, Status};
use tonic_types::StatusExt;

mod reasons;

pub use reasons::{AuthenticationFailure, Missing, Refusal};

/// DRF's key for errors that belong to no single field.
pub const NON_FIELD_ERRORS: &str = "non_field_errors";

/// Everything a request can fail with. Each variant decides its status code; the variants that
/// wrap an internal cause log it and send the client only a fixed message.
#[derive(Debug)]
pub enum ApiError {
    /// 401: no usable credentials, with the reason DRF gives.
    NotAuthenticated(AuthenticationFailure),
    /// 403: not allowed, or a CSRF check failed.
    Forbidden(Refusal),
    /// 404: no such route or object.
    NotFound(Missing),
    /// 405: the route exists, the method does not (axum adds the `Allow` header).
    MethodNotAllowed(Method),
    /// 415: the body's `Content-Type` as sent.
    UnsupportedMediaType(String),
    /// 400: the body is not JSON; the parser's reason.
    MalformedJson(String),
    /// 400: the `Host` is not in `ALLOWED_HOSTS`: Django's plain HTML page, not DRF's JSON,
    /// since Django refuses the request before DRF sees it.
    DisallowedHost,
    /// 400: the body could not be read at all (a broken chunked encoding, a connection cut
    /// mid-body): DRF's generic `ParseError`.
    MalformedRequest,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 429: come back after this long.
    Throttled(Duration),
    /// 400: DRF field errors, one list of messages per field.
    Invalid(FieldErrors),
    /// 400 or 401 (the seeds differ): `{"error": "Invalid credentials"}`.
    InvalidCredentials(StatusCode),
    /// 400: seed 003's logout without any credentials.
    NotLoggedIn,
    /// 409: stock would go below zero.
    InsufficientStock,
    /// 400: the `Idempotency-Key` header is no key; what is wrong with it.
    MalformedIdempotencyKey(&'static str),
    /// 422: the `Idempotency-Key` was used before with another request (the IETF draft's
    /// status for it).
    IdempotencyKeyReused,
    /// 503: a service cannot be reached, or is too busy (then with how long to wait).
    Unavailable {
        cause: String,
        retry_after: Option<Duration>,
    },
    /// 504: a service did not answer in time.
    Timeout,
    /// 500: anything else; the cause is logged, never sent.
    Internal(String),
}

/// The service that answered a gRPC call; it decides what a NOT_FOUND was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Auth,
    Inventory,
}

impl ApiError {
    /// The gRPC → HTTP table. Field violations become DRF field errors, ErrorInfo reasons pick
    /// DRF's 401 messages, RetryInfo becomes `Retry-After`.
    pub fn from_status(backend: Backend, status: &Status) -> Self {
        let details = status.get_error_details();
        let reason = details.error_info().map(|info| info.reason.as_str());
        match status.code() {
            Code::InvalidArgument => Self::Invalid(
                FieldErrors::from_status(status)
                    .filter(|errors| !errors.is_empty())
                    .unwrap_or_else(|| FieldErrors::single(NON_FIELD_ERRORS, "Invalid input.")),
            ),
            Code::Unauthenticated => {
                Self::NotAuthenticated(AuthenticationFailure::from_reason(reason))
            }
            Code::PermissionDenied => Self::Forbidden(Refusal::Permission),
            Code::NotFound => Self::NotFound(match backend {
                Backend::Auth => Missing::User,
                Backend::Inventory => Missing::Product,
            }),
            Code::FailedPrecondition
                if reason == Some(proto::reasons::inventory::INSUFFICIENT_STOCK) =>
            {
                Self::InsufficientStock
            }
            Code::FailedPrecondition if reason == Some(proto::idempotency::REUSED) => {
                Self::IdempotencyKeyReused
            }
            // dj-rest-auth's refusal of a login with an unverified address.
            Code::FailedPrecondition if reason == Some(proto::reasons::EMAIL_NOT_VERIFIED) => {
                Self::Invalid(FieldErrors::single(NON_FIELD_ERRORS, status.message()))
            }
            Code::ResourceExhausted => Self::Throttled(
                details
                    .retry_info()
                    .and_then(|info| info.retry_delay)
                    .unwrap_or(Duration::from_secs(1)),
            ),
            Code::Unavailable => Self::Unavailable {
                cause: format!("{backend:?}: {}", status.message()),
                retry_after: details.retry_info().and_then(|info| info.retry_delay),
            },
            Code::DeadlineExceeded | Code::Cancelled => Self::Timeout,
            code => Self::Internal(format!(
                "{backend:?} answered {code:?}: {}",
                status.message()
            )),
        }
    }

    /// [`Self::from_status`] for a call to the auth service (for `map_err`).
    pub fn auth(status: Status) -> Self {
        Self::from_status(Backend::Auth, &status)
    }

    /// [`Self::from_status`] for a call to the inventory service (for `map_err`).
    pub fn inventory(status: Status) -> Self {
        Self::from_status(Backend::Inventory, &status)
    }

    /// One field error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(FieldErrors::single(field, message))
    }
}

impl ApiError {
    /// The same error with the messages of field `from` under `to`, for a route whose document
    /// names a field differently from the service.
    pub fn renaming_field(self, from: &str, to: &str) -> Self {
        match self {
            Self::Invalid(errors) if from != to => {
                let mut renamed = FieldErrors::new();
                for (field, message) in errors.iter() {
                    renamed.add(if field == from { to } else { field }, message);
                }
                Self::Invalid(renamed)
            }
            other => other,
        }
    }
}

/// A message field proto3 makes optional but a service always sets; its absence is a fault.
pub fn present<T>(value: Option<T>, what: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::Internal(format!("a service answered without {what}")))
}

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        Self::Invalid(errors)
    }
}

/// DRF's field-error body: `{"field": ["message", ...], ...}`.
pub fn field_errors_body(errors: &FieldErrors) -> Value {
    let mut body = Map::new();
    for (field, message) in errors.iter() {
        let messages = body
            .entry(field)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(messages) = messages {
            messages.push(Value::from(message));
        }
    }
    Value::Object(body)
}

/// `{"detail": ...}` with a status.
fn detail(status: StatusCode, detail: impl Into<String>) -> Response {
    (status, Json(json!({ "detail": detail.into() }))).into_response()
}

/// A wait in whole seconds, rounded up, at least one (what `Retry-After` carries).
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// DRF's throttle message; the wait is rounded up to whole seconds, as DRF does.
fn throttled(wait: Duration) -> Response {
    let seconds = whole_seconds(wait);
    let unit = if seconds == 1 { "second" } else { "seconds" };
    let mut response = detail(
        StatusCode::TOO_MANY_REQUESTS,
        format!("Request was throttled. Expected available in {seconds} {unit}."),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::NotAuthenticated(failure) => {
                let mut response = detail(StatusCode::UNAUTHORIZED, failure.detail());
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
                response
            }
            Self::Forbidden(refusal) => detail(StatusCode::FORBIDDEN, refusal.detail()),
            Self::NotFound(missing) => detail(StatusCode::NOT_FOUND, missing.detail()),
            Self::MethodNotAllowed(method) => detail(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("Method \"{method}\" not allowed."),
            ),
            Self::UnsupportedMediaType(media_type) => detail(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Unsupported media type \"{media_type}\" in request."),
            ),
            Self::MalformedJson(reason) => detail(
                StatusCode::BAD_REQUEST,
                format!("JSON parse error - {reason}"),
            ),
            Self::DisallowedHost => (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<h1>Bad Request (400)</h1>",
            )
                .into_response(),
            Self::MalformedRequest => detail(StatusCode::BAD_REQUEST, "Malformed request."),
            Self::PayloadTooLarge => detail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body exceeds the limit of 1 MiB.",
            ),
            Self::Throttled(wait) => throttled(wait),
            Self::Invalid(errors) => {
                (StatusCode::BAD_REQUEST, Json(field_errors_body(&errors))).into_response()
            }
            Self::InvalidCredentials(status) => {
                (status, Json(json!({ "error": "Invalid credentials" }))).into_response()
            }
            Self::NotLoggedIn => detail(
                StatusCode::BAD_REQUEST,
                "You should be logged in to logout. Check whether the token is passed.",
            ),
            Self::InsufficientStock => detail(StatusCode::CONFLICT, "Insufficient stock."),
            Self::MalformedIdempotencyKey(message) => detail(StatusCode::BAD_REQUEST, message),
            Self::IdempotencyKeyReused => detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                service_kit::idempotency::REUSED_MESSAGE,
            ),
            Self::Unavailable { cause, retry_after } => {
                tracing::warn!(%cause, "service unavailable");
                let mut response = detail(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service temporarily unavailable, try again later.",
                );
                if let Some(wait) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(whole_seconds(wait)));
                }
                response
            }
            Self::Timeout => detail(
                StatusCode::GATEWAY_TIMEOUT,
                "The service did not answer in time.",
            ),
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                detail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "A server error occurred.",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use service_kit::grpc::with_reason;
    use tonic_types::ErrorDetails;

    use super::*;

    #[test]
    fn maps_reasons_to_drf_401_messages() {
        for (reason, failure) in [
            (
                proto::reasons::CREDENTIALS_MISSING,
                AuthenticationFailure::NotProvided,
            ),
            (
                proto::reasons::TOKEN_INVALID,
                AuthenticationFailure::InvalidToken,
            ),
            (
                proto::reasons::TOKEN_EXPIRED,
                AuthenticationFailure::Expired,
            ),
            (
                proto::reasons::USER_INACTIVE,
                AuthenticationFailure::Inactive,
            ),
        ] {
            let error = ApiError::auth(with_reason(
                Code::Unauthenticated,
                "refused",
                reason,
                proto::reasons::DOMAIN,
            ));
            assert!(matches!(error, ApiError::NotAuthenticated(f) if f == failure));
        }
    }

    #[test]
    fn names_the_missing_object_by_service() {
        let not_found = Status::not_found("gone");
        assert!(matches!(
            ApiError::auth(not_found.clone()),
            ApiError::NotFound(Missing::User)
        ));
        assert!(matches!(
            ApiError::inventory(not_found),
            ApiError::NotFound(Missing::Product)
        ));
    }

    #[test]
    fn retry_info_becomes_retry_after() {
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            "locked",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(1_500))),
        );
        let response = ApiError::auth(status).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn an_overloaded_service_is_a_503_with_retry_after() {
        let status = Status::with_error_details(
            Code::Unavailable,
            "busy",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(5))),
        );
        let response = ApiError::auth(status).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let down = ApiError::auth(Status::unavailable("tcp connect error")).into_response();
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!down.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn a_reused_idempotency_key_is_a_422() {
        let status = with_reason(
            Code::FailedPrecondition,
            "reused",
            proto::idempotency::REUSED,
            proto::idempotency::DOMAIN,
        );
        let response = ApiError::inventory(status).into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn groups_field_errors_by_field() {
        let mut errors = FieldErrors::new();
        errors.add("password", "a");
        errors.add("email", "b");
        errors.add("password", "c");
        assert_eq!(
            field_errors_body(&errors),
            json!({"password": ["a", "c"], "email": ["b"]})
        );
    }

    #[test]
    fn hides_internal_causes() {
        let error = ApiError::auth(Status::internal("SELECT * FROM users failed at 10.0.0.3"));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
