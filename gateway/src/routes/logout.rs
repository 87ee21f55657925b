//! The four logout routes (seeds 000/004, 001, 002 and 003). Each revokes the credential the
//! caller presented and, when a cookie session came along with a token, that session too; the
//! routes differ only in their message and in what an anonymous call gets.

use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, Method};
use proto::auth::v1::{CredentialKind, RevokeTokenRequest};
use serde_json::json;

use super::Endpoint;
use crate::{
    clients::{Credential, Upstreams},
    error::{ApiError, AuthenticationFailure},
    extract::Caller,
    openapi::{Operation, Schema},
    session::{self, CookiePolicy},
};

/// What one logout route answers.
struct Logout {
    /// The success body's one key and its text.
    message: (&'static str, &'static str),
    /// The error for a call without any credentials.
    anonymous: fn() -> ApiError,
}

/// `/api/logout/`, shared by seeds 000 and 004.
const API_LOGOUT: Logout = Logout {
    message: ("message", "Successfully logged out."),
    anonymous: not_authenticated,
};

const LOGOUT: Logout = Logout {
    message: ("message", "Successfully logged out"),
    anonymous: not_authenticated,
};

const API_V1_LOGOUT: Logout = Logout {
    message: ("message", "Logged out successfully"),
    anonymous: not_authenticated,
};

const API_USERS_LOGOUT: Logout = Logout {
    message: ("detail", "Successfully logged out."),
    anonymous: || ApiError::NotLoggedIn,
};

fn not_authenticated() -> ApiError {
    ApiError::NotAuthenticated(AuthenticationFailure::NotProvided)
}

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            API_LOGOUT.operation(
                "/api/logout/",
                "Log out: revoke this token (seeds 000, 004)",
            ),
            |s, p, h, c| log_out(&API_LOGOUT, s, p, h, c),
        ),
        Endpoint::new(
            LOGOUT.operation("/logout/", "Log out: end the cookie session (seed 001)"),
            |s, p, h, c| log_out(&LOGOUT, s, p, h, c),
        ),
        Endpoint::new(
            API_V1_LOGOUT.operation("/api/v1/logout/", "Log out (seed 002)"),
            |s, p, h, c| log_out(&API_V1_LOGOUT, s, p, h, c),
        ),
        Endpoint::new(
            API_USERS_LOGOUT.operation("/api/users/logout/", "Log out (seed 003)"),
            |s, p, h, c| log_out(&API_USERS_LOGOUT, s, p, h, c),
        ),
    ]
}

impl Logout {
    /// The route at `path`, answering its [`Self::message`] (its refusal of an anonymous call
    /// is a 401 or a 400 `{"detail"}`, both a logout's in any case).
    fn operation(&self, path: &'static str, summary: &'static str) -> Operation {
        let (key, text) = self.message;
        let answer = Schema::object([(key, Schema::constant(text))]);
        Operation::new(Method::POST, path, summary, 200, answer).authenticated()
    }
}

async fn log_out(
    route: &'static Logout,
    State(upstreams): State<Upstreams>,
    cookie_policy: CookiePolicy,
    headers: HeaderMap,
    caller: Caller,
) -> Result<Response, ApiError> {
    let Some(credential) = &caller.credential else {
        return Err((route.anonymous)());
    };
    upstreams
        .auth()
        .revoke_token(caller.request(RevokeTokenRequest {}))
        .await
        .map_err(ApiError::auth)?;
    let session_cookie = session::cookie(&headers, session::SESSION_COOKIE);
    if let Some(key) = session_cookie.filter(|_| credential.kind == CredentialKind::Token) {
        revoke_session(&upstreams, &caller, key).await;
    }
    let (key, text) = route.message;
    let cookies = session_cookie.map(|_| cookie_policy.clear());
    Ok((cookies, Json(json!({ key: text }))).into_response())
}

/// Revokes the cookie session `key` alongside a call that has already succeeded (a logout by
/// token, a new login): best effort, since the session may be gone already.
pub(super) async fn revoke_session(upstreams: &Upstreams, caller: &Caller, key: &str) {
    let session = Credential {
        kind: CredentialKind::Session,
        key: key.into(),
    };
    if let Err(status) = upstreams
        .auth()
        .revoke_token(caller.request_as(RevokeTokenRequest {}, &session))
        .await
    {
        tracing::debug!(code = ?status.code(), "the session was not revoked");
    }
}
