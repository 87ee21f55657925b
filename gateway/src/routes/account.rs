//! What a logged-in user does with their own account: who am I, the role dashboard (seed 004),
//! token refresh, logging out everywhere and changing the password.

use axum::{Json, extract::State};
use http::Method;
use proto::auth::v1::{
    ChangePasswordRequest, GetCurrentUserRequest, RefreshTokenRequest, RevokeAllTokensRequest, User,
};
use serde_json::{Value, json};
use service_kit::validation::FieldErrors;

use super::Endpoint;
use crate::{
    clients::Upstreams,
    error::{ApiError, present},
    extract::{Authenticated, Caller, Fields},
    openapi::{Field, Operation, Schema},
    shapes::{self, FULL_USER},
};

pub fn endpoints() -> Vec<Endpoint> {
    let message = || Schema::object([("message", Schema::string())]);
    vec![
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/api/me/",
                "The current user",
                200,
                FULL_USER.schema(),
            )
            .authenticated(),
            me,
        ),
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/api/dashboard/",
                "The role's dashboard greeting (seed 004)",
                200,
                message(),
            )
            .authenticated(),
            dashboard,
        ),
        Endpoint::new(
            Operation::new(
                Method::POST,
                "/api/refresh-token/",
                "Swap this token for a new one (seed 004)",
                200,
                Schema::object([("token", Schema::string())]),
            )
            .authenticated(),
            refresh_token,
        ),
        Endpoint::new(
            Operation::new(
                Method::POST,
                "/api/logout-all/",
                "Revoke every token of the user",
                200,
                Schema::object([("message", Schema::constant(LOGGED_OUT_EVERYWHERE))]),
            )
            .authenticated(),
            log_out_everywhere,
        ),
    ]
}

/// The password change, apart: it checks a password, so it is throttled like login.
pub fn password_endpoints() -> Vec<Endpoint> {
    vec![Endpoint::new(
        Operation::new(
            Method::POST,
            "/api/password/change/",
            "Change the password; other tokens are revoked. Wrong old passwords count toward \
             the account's lockout like failed logins",
            200,
            Schema::object([("detail", Schema::constant(PASSWORD_CHANGED))]),
        )
        .body(PASSWORD_CHANGE)
        .authenticated(),
        change_password,
    )]
}

/// What `POST /api/password/change/` reads.
const PASSWORD_CHANGE: [Field; 2] = [
    Field::text("old_password").required(),
    Field::text("new_password").required(),
];

const LOGGED_OUT_EVERYWHERE: &str = "Successfully logged out of all sessions.";
const PASSWORD_CHANGED: &str = "Password changed.";

async fn me(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let user = current_user(&upstreams, &caller).await?;
    Ok(Json(Value::Object(shapes::user(&user, &FULL_USER))))
}

/// The caller's own user record.
async fn current_user(upstreams: &Upstreams, caller: &Caller) -> Result<User, ApiError> {
    let user = upstreams
        .auth()
        .get_current_user(caller.request(GetCurrentUserRequest {}))
        .await
        .map_err(ApiError::auth)?;
    Ok(user.into_inner())
}

async fn dashboard(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let user = current_user(&upstreams, &caller).await?;
    let role = user.role().title();
    Ok(Json(
        json!({ "message": format!("Welcome to the {role} Dashboard!") }),
    ))
}

async fn refresh_token(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let response = upstreams
        .auth()
        .refresh_token(caller.request(RefreshTokenRequest {}))
        .await
        .map_err(ApiError::auth)?
        .into_inner();
    let token = present(response.token, "RefreshToken's token")?;
    Ok(Json(json!({ "token": token.key })))
}

async fn log_out_everywhere(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    upstreams
        .auth()
        .revoke_all_tokens(caller.request(RevokeAllTokensRequest {}))
        .await
        .map_err(ApiError::auth)?;
    Ok(Json(json!({ "message": LOGGED_OUT_EVERYWHERE })))
}

async fn change_password(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    fields: Fields,
) -> Result<Json<Value>, ApiError> {
    let mut errors = FieldErrors::new();
    let [old_password, new_password] = PASSWORD_CHANGE.map(|f| fields.text(f.name, &mut errors));
    let request = ChangePasswordRequest {
        old_password,
        new_password,
    };
    errors.into_result()?;
    upstreams
        .auth()
        .change_password(caller.request_naming_client(request))
        .await
        .map_err(ApiError::auth)?;
    Ok(Json(json!({ "detail": PASSWORD_CHANGED })))
}
