//! The second factor (TOTP) of a logged-in user: enrolment, its confirmation (which shows the
//! recovery codes once) and disabling it; and an admin's reset of a user's factor. Logging in
//! with the factor is the login routes' ([`super::login`]). The auth service decides every
//! refusal; a wrong code or password is a field error there and counts toward the account's
//! lockout, so these routes are throttled like login (but the admin's reset).

use axum::{Json, extract::State, http::StatusCode};
use http::Method;
use proto::auth::v1::{
    BeginTotpEnrolmentRequest, ConfirmTotpEnrolmentRequest, DisableTotpRequest,
    ResetSecondFactorRequest,
};
use serde_json::{Value, json};
use service_kit::validation::FieldErrors;

use super::Endpoint;
use crate::{
    clients::Upstreams,
    error::ApiError,
    extract::{Authenticated, Fields, ObjectId},
    openapi::{Content, Field, Operation, Schema},
};

const CONFIRMATION: [Field; 1] = [Field::text("code").required()];
/// One of the two is needed; the auth service says so when neither is given.
const PROOF: [Field; 2] = [Field::text("code"), Field::text("password")];

/// The caller's own factor: throttled, since two of them check a code or a password.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            Operation::new(
                Method::POST,
                "/api/mfa/totp/",
                "Start enrolling a TOTP second factor (again, while unconfirmed)",
                200,
                Schema::object([
                    ("secret", Schema::string()),
                    ("otpauth_url", Schema::string()),
                ]),
            )
            .authenticated(),
            begin,
        ),
        Endpoint::new(
            Operation::new(
                Method::POST,
                "/api/mfa/totp/confirm/",
                "Confirm the enrolment with a code; answers the ten recovery codes, once",
                200,
                Schema::object([("recovery_codes", Schema::array(Schema::string()))]),
            )
            .body(CONFIRMATION)
            .authenticated(),
            confirm,
        ),
        Endpoint::new(
            Operation::new(
                Method::DELETE,
                "/api/mfa/totp/",
                "Disable the second factor, given a code (TOTP or recovery) or the password",
                204,
                Content::Empty,
            )
            .body(PROOF)
            .authenticated(),
            disable,
        ),
    ]
}

/// An admin's reset of another user's factor (a lost phone).
pub fn admin_endpoints() -> Vec<Endpoint> {
    vec![Endpoint::new(
        Operation::new(
            Method::DELETE,
            "/api/users/{id}/mfa/",
            "Reset a user's second factor (admins)",
            204,
            Content::Empty,
        )
        .authenticated(),
        reset,
    )]
}

async fn begin(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let enrolment = upstreams
        .auth()
        .begin_totp_enrolment(caller.request(BeginTotpEnrolmentRequest {}))
        .await
        .map_err(ApiError::auth)?
        .into_inner();
    Ok(Json(json!({
        "secret": enrolment.secret,
        "otpauth_url": enrolment.otpauth_url,
    })))
}

async fn confirm(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    fields: Fields,
) -> Result<Json<Value>, ApiError> {
    let mut errors = FieldErrors::new();
    let code = fields.text("code", &mut errors);
    errors.into_result()?;
    let confirmed = upstreams
        .auth()
        .confirm_totp_enrolment(caller.request_naming_client(ConfirmTotpEnrolmentRequest { code }))
        .await
        .map_err(ApiError::auth)?
        .into_inner();
    Ok(Json(json!({ "recovery_codes": confirmed.recovery_codes })))
}

async fn disable(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    fields: Fields,
) -> Result<StatusCode, ApiError> {
    let mut errors = FieldErrors::new();
    let [code, password] = PROOF.map(|field| fields.text(field.name, &mut errors));
    errors.into_result()?;
    upstreams
        .auth()
        .disable_totp(caller.request_naming_client(DisableTotpRequest { code, password }))
        .await
        .map_err(ApiError::auth)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reset(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    ObjectId(id): ObjectId,
) -> Result<StatusCode, ApiError> {
    upstreams
        .auth()
        .reset_second_factor(caller.request(ResetSecondFactorRequest { id }))
        .await
        .map_err(ApiError::auth)?;
    Ok(StatusCode::NO_CONTENT)
}
