//! The five login routes (seeds 000 to 004), and the second step of a login with a second
//! factor. One handler; the documents differ in which fields name the account, whether a cookie
//! session is opened, how a refusal looks and what success returns, and each route declares
//! those. For a user with a second factor a right password gets `{"mfa_required": true,
//! "challenge": ...}` instead; `POST /api/login/mfa/` with the challenge and a code then answers
//! what the route would have. The auth service keeps the route's path with the challenge (an
//! opaque name to it) and gives it back, so the answer is the route's own.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, Method, StatusCode};
use proto::{
    auth::v1::{CompleteMfaLoginRequest, IssuedCredential, LoginRequest, LoginResponse},
    reasons,
};
use serde_json::{Value, json};
use service_kit::validation::{BLANK, FieldErrors, REQUIRED};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::{Endpoint, logout};
use crate::{
    clients::Upstreams,
    error::{ApiError, NON_FIELD_ERRORS, present},
    extract::{Anyone, Caller, Fields},
    openapi::{Content, Field, Operation, Refusal, Schema},
    origins::OriginVerdict,
    session::{self, CookiePolicy},
    shapes::{self, USER_PROFILE_AND_FLAGS, UserShape},
};

/// What one login route asks for and answers.
struct Login {
    /// Where it is served; also its name, kept by auth with a second-factor challenge.
    path: &'static str,
    /// The body fields that may name the account (any one of them will do).
    identifiers: &'static [&'static str],
    /// Whether to open a cookie session too (seed 001's `/login/`); such a route refuses
    /// another site's request, as Django's `LoginView` does.
    open_session: bool,
    rejection: Rejection,
    answer: LoginAnswer,
}

/// How a route says "no".
enum Rejection {
    /// `{"error": "Invalid credentials"}` with this status; a missing field is just that too,
    /// as for the documents' views that call `authenticate` directly.
    ErrorKey(StatusCode),
    /// DRF serializer style: missing fields are field errors; bad credentials are
    /// `non_field_errors`; `tells_inactive` says "User account is disabled." for an inactive
    /// account (seed 003) instead of the usual message.
    NonFieldErrors { tells_inactive: bool },
}

/// The body of a successful login.
enum LoginAnswer {
    /// `{"token": key}`
    Token,
    /// `{"key": key}`
    Key,
    /// `{"message": "user logged in", "token": key}`
    MessageAndToken,
    /// The user, plus `message` and `token`.
    UserMessageAndToken(&'static UserShape),
}

const API_LOGIN: Login = Login {
    path: "/api/login/",
    identifiers: &["username"],
    open_session: false,
    rejection: Rejection::ErrorKey(StatusCode::UNAUTHORIZED),
    answer: LoginAnswer::Token,
};

const LOGIN: Login = Login {
    path: "/login/",
    identifiers: &["email", "username"],
    open_session: true,
    rejection: Rejection::ErrorKey(StatusCode::UNAUTHORIZED),
    answer: LoginAnswer::UserMessageAndToken(&USER_PROFILE_AND_FLAGS),
};

const API_V1_LOGIN: Login = Login {
    path: "/api/v1/login/",
    identifiers: &["username"],
    open_session: false,
    rejection: Rejection::ErrorKey(StatusCode::BAD_REQUEST),
    answer: LoginAnswer::MessageAndToken,
};

const API_USERS_LOGIN: Login = Login {
    path: "/api/users/login/",
    identifiers: &["email"],
    open_session: false,
    rejection: Rejection::NonFieldErrors {
        tells_inactive: true,
    },
    answer: LoginAnswer::Key,
};

const API_TOKEN_AUTH: Login = Login {
    path: "/api/api-token-auth/",
    identifiers: &["username"],
    open_session: false,
    rejection: Rejection::NonFieldErrors {
        tells_inactive: false,
    },
    answer: LoginAnswer::Token,
};

/// Every login route, by which the second step finds the one it completes.
const ROUTES: [&Login; 5] = [
    &API_LOGIN,
    &LOGIN,
    &API_V1_LOGIN,
    &API_USERS_LOGIN,
    &API_TOKEN_AUTH,
];

/// What the second step reads.
const COMPLETION: [Field; 2] = [
    Field::text("challenge").required(),
    Field::text("code").required(),
];

const UNABLE_TO_LOG_IN: &str = "Unable to log in with provided credentials.";
const ACCOUNT_DISABLED: &str = "User account is disabled.";

/// Django's session lifetime, for a session the service gave no expiry.
const DEFAULT_SESSION_AGE: Duration = Duration::from_secs(1_209_600);

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            API_LOGIN.operation("Log in for a token (seed 000)"),
            |s, p, o, h, c, f| log_in(&API_LOGIN, s, p, o, h, c, f),
        ),
        Endpoint::new(
            LOGIN.operation("Log in with a cookie session and a token (seed 001)"),
            |s, p, o, h, c, f| log_in(&LOGIN, s, p, o, h, c, f),
        ),
        Endpoint::new(
            API_V1_LOGIN.operation("Log in for a token (seed 002)"),
            |s, p, o, h, c, f| log_in(&API_V1_LOGIN, s, p, o, h, c, f),
        ),
        Endpoint::new(
            API_USERS_LOGIN.operation("Log in by email for a key (seed 003)"),
            |s, p, o, h, c, f| log_in(&API_USERS_LOGIN, s, p, o, h, c, f),
        ),
        Endpoint::new(
            API_TOKEN_AUTH.operation("Obtain a token (seed 004)"),
            |s, p, o, h, c, f| log_in(&API_TOKEN_AUTH, s, p, o, h, c, f),
        ),
        Endpoint::new(completion_operation(), complete),
    ]
}

async fn log_in(
    route: &'static Login,
    State(upstreams): State<Upstreams>,
    cookie_policy: CookiePolicy,
    OriginVerdict(origin): OriginVerdict,
    headers: HeaderMap,
    Anyone(caller): Anyone,
    fields: Fields,
) -> Result<Response, ApiError> {
    if route.open_session {
        origin.map_err(ApiError::Forbidden)?;
    }
    let request = route.read(&fields)?;
    let response = match upstreams
        .auth()
        .login(caller.request_naming_client(request))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => return Err(route.rejection.judge(status)),
    };
    if let Some(challenge) = response.mfa_challenge {
        return Ok(Json(json!({ "mfa_required": true, "challenge": challenge })).into_response());
    }
    route
        .admit(&upstreams, cookie_policy, &caller, &headers, &response)
        .await
}

/// The second step: the challenge and a code, answered as the login route that issued the
/// challenge answers. Another site's request is refused before the code is checked, as
/// `/login/` refuses it (the challenge may open a cookie session).
async fn complete(
    State(upstreams): State<Upstreams>,
    cookie_policy: CookiePolicy,
    OriginVerdict(origin): OriginVerdict,
    headers: HeaderMap,
    Anyone(caller): Anyone,
    fields: Fields,
) -> Result<Response, ApiError> {
    origin.map_err(ApiError::Forbidden)?;
    let mut errors = FieldErrors::new();
    let [challenge, code] = COMPLETION.map(|field| fields.required_text(field.name, &mut errors));
    errors.into_result()?;
    let request = CompleteMfaLoginRequest { challenge, code };
    let response = upstreams
        .auth()
        .complete_mfa_login(caller.request_naming_client(request))
        .await
        .map_err(ApiError::auth)?
        .into_inner();
    let asked = response.route.as_deref();
    let route = ROUTES
        .into_iter()
        .find(|route| Some(route.path) == asked)
        .ok_or_else(|| ApiError::Internal("CompleteMfaLogin named no login route".to_owned()))?;
    route
        .admit(&upstreams, cookie_policy, &caller, &headers, &response)
        .await
}

/// `/api/login/mfa/` as the document shows it: any login route's success.
fn completion_operation() -> Operation {
    let mut operation = Operation::new(
        Method::POST,
        "/api/login/mfa/",
        "Complete a login with a second factor: the challenge and a TOTP or recovery code; \
         answers what the login route asked would have. Wrong codes count toward the \
         account's lockout",
        200,
        API_LOGIN.answer.schema(),
    )
    .body(COMPLETION);
    for route in &ROUTES[1..] {
        operation = operation.also(200, "Success", Content::Json(route.answer.schema()));
    }
    let refusal = Content::Json(Refusal::Detail.schema());
    operation.also(403, "Another site's request (login CSRF)", refusal)
}

/// A new login on a browser replaces its session: the one its old cookie held is revoked, so
/// a copy of that cookie cannot outlive the login that replaced it (Django's `cycle_key`).
async fn revoke_replaced_session(upstreams: &Upstreams, caller: &Caller, headers: &HeaderMap) {
    if let Some(key) =
        session::cookie(headers, session::SESSION_COOKIE).filter(|key| !key.is_empty())
    {
        logout::revoke_session(upstreams, caller, key).await;
    }
}

impl Login {
    /// The route, as the document shows it: from the same table [`Self::read`],
    /// [`Rejection::judge`] and [`LoginAnswer::body`] follow.
    fn operation(&self, summary: &'static str) -> Operation {
        // A field is required where its absence is refused: every field for a serializer,
        // else the password and the one identifier (two identifiers: either will do).
        let every = matches!(self.rejection, Rejection::NonFieldErrors { .. });
        let identifiers = self.identifiers.iter().map(|&name| {
            let field = Field::text(name);
            if every || self.identifiers.len() == 1 {
                field.required()
            } else {
                field
            }
        });
        let fields = identifiers.chain([Field::text("password").required()]);
        let mut operation =
            Operation::new(Method::POST, self.path, summary, 200, self.answer.schema())
                .body(fields)
                .also(
                    200,
                    "A second factor is needed",
                    Content::Json(mfa_required()),
                );
        if let Rejection::ErrorKey(status) = self.rejection {
            let refusal = Content::Json(Refusal::InvalidCredentials.schema());
            operation = operation.also(status.as_u16(), "Invalid credentials", refusal);
        }
        if self.open_session {
            let refusal = Content::Json(Refusal::Detail.schema());
            operation = operation.also(403, "Another site's request (login CSRF)", refusal);
        }
        operation
    }

    /// The RPC this body asks for, or the route's refusal of it.
    fn read(&self, fields: &Fields) -> Result<LoginRequest, ApiError> {
        let mut errors = FieldErrors::new();
        let mut request = LoginRequest {
            open_session: self.open_session,
            route: Some(self.path.to_owned()),
            ..LoginRequest::default()
        };
        for &name in self.identifiers.iter().chain(&["password"]) {
            let value = fields.text(name, &mut errors);
            if let Rejection::NonFieldErrors { .. } = self.rejection {
                // These serializers require every field they declare.
                match &value {
                    None if !fields.contains(name) => errors.add(name, REQUIRED),
                    Some(text) if text.is_empty() => errors.add(name, BLANK),
                    _ => {}
                }
            }
            *match name {
                "email" => &mut request.email,
                "password" => &mut request.password,
                _ => &mut request.username,
            } = value;
        }
        if let Rejection::ErrorKey(status) = self.rejection {
            let named = request.username.is_some() || request.email.is_some();
            if !errors.is_empty() || !named || request.password.is_none() {
                return Err(ApiError::InvalidCredentials(status));
            }
        }
        errors.into_result()?;
        Ok(request)
    }

    /// The answer to a login that got its credential (in one step or two): the route's body,
    /// and the session cookie if it opens one.
    async fn admit(
        &self,
        upstreams: &Upstreams,
        cookie_policy: CookiePolicy,
        caller: &Caller,
        headers: &HeaderMap,
        response: &LoginResponse,
    ) -> Result<Response, ApiError> {
        let body = self.answer.body(response)?;
        let cookies = match (self.open_session, &response.session) {
            (true, Some(session)) => {
                revoke_replaced_session(upstreams, caller, headers).await;
                Some(cookie_policy.open(&session.key, seconds_left(session)))
            }
            _ => None,
        };
        Ok((cookies, Json(body)).into_response())
    }
}

/// What a login route answers when the user has a second factor.
fn mfa_required() -> Schema {
    Schema::object([
        ("mfa_required", Schema::boolean()),
        ("challenge", Schema::string()),
    ])
}

impl Rejection {
    /// What the route answers for a failed Login RPC: wrong credentials and (after a correct
    /// password) an inactive account are the route's own refusal; anything else, such as a
    /// locked account (429), goes through the common table.
    fn judge(&self, status: Status) -> ApiError {
        let details = status.get_error_details();
        let reason = details.error_info().map(|info| info.reason.as_str());
        let inactive =
            status.code() == Code::PermissionDenied && reason == Some(reasons::USER_INACTIVE);
        let wrong =
            status.code() == Code::Unauthenticated && reason == Some(reasons::INVALID_CREDENTIALS);
        match self {
            Self::ErrorKey(http_status)
                if inactive || wrong || status.code() == Code::InvalidArgument =>
            {
                ApiError::InvalidCredentials(*http_status)
            }
            Self::NonFieldErrors {
                tells_inactive: true,
            } if inactive => ApiError::field(NON_FIELD_ERRORS, ACCOUNT_DISABLED),
            Self::NonFieldErrors { .. } if inactive || wrong => {
                ApiError::field(NON_FIELD_ERRORS, UNABLE_TO_LOG_IN)
            }
            _ => ApiError::auth(status),
        }
    }
}

impl LoginAnswer {
    /// The schema of [`Self::body`].
    fn schema(&self) -> Schema {
        let key = || Schema::string();
        let message = || Schema::constant("user logged in");
        match self {
            Self::Token => Schema::object([("token", key())]),
            Self::Key => Schema::object([("key", key())]),
            Self::MessageAndToken => Schema::object([("message", message()), ("token", key())]),
            Self::UserMessageAndToken(shape) => {
                let mut properties = shape.properties();
                properties.extend([("message", message()), ("token", key())]);
                Schema::object(properties)
            }
        }
    }

    fn body(&self, response: &LoginResponse) -> Result<Value, ApiError> {
        let key = &present(response.token.as_ref(), "Login's token")?.key;
        Ok(match self {
            Self::Token => json!({ "token": key }),
            Self::Key => json!({ "key": key }),
            Self::MessageAndToken => json!({ "message": "user logged in", "token": key }),
            Self::UserMessageAndToken(shape) => {
                let mut body =
                    shapes::user(present(response.user.as_ref(), "Login's user")?, shape);
                body.insert("message".to_owned(), json!("user logged in"));
                body.insert("token".to_owned(), json!(key));
                Value::Object(body)
            }
        })
    }
}

/// How long the session cookie should live: until the session expires.
fn seconds_left(session: &IssuedCredential) -> u64 {
    let Some(expires_at) = &session.expires_at else {
        return DEFAULT_SESSION_AGE.as_secs();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    u64::try_from(expires_at.seconds)
        .unwrap_or(0)
        .saturating_sub(now)
}
