//! Password reset and e-mail verification by mail, as dj-rest-auth serves them: the routes,
//! their fields and their answers. The auth service decides everything else (whether a message
//! is sent, whether a token or key is good, the password rules); these routes only speak
//! dj-rest-auth's words.

use axum::{Json, extract::State};
use http::Method;
use proto::auth::v1::{
    ConfirmPasswordResetRequest, RequestPasswordResetRequest, ResendEmailVerificationRequest,
    VerifyEmailRequest,
};
use serde_json::{Value, json};
use service_kit::validation::{BLANK, FieldErrors};
use tonic::Code;

use super::Endpoint;
use crate::{
    clients::Upstreams,
    error::{ApiError, Missing},
    extract::{Anyone, Fields},
    openapi::{Content, Field, Operation, Refusal, Schema},
};

const RESET_SENT: &str = "Password reset e-mail has been sent.";
const RESET_DONE: &str = "Password has been reset with the new password.";
const OK: &str = "ok";
/// Django's `SetPasswordForm`, with its typographic apostrophe.
const PASSWORDS_DIFFER: &str = "The two password fields didn’t match.";

const RESET: [Field; 1] = [Field::text("email").required()];
const CONFIRM: [Field; 4] = [
    Field::text("uid").required(),
    Field::text("token").required(),
    Field::text("new_password1").required(),
    Field::text("new_password2").required(),
];
const VERIFY: [Field; 1] = [Field::text("key").required()];
const RESEND: [Field; 1] = [Field::text("email").required()];

/// All four sit behind the login throttle: each either checks a secret or sends a message.
pub fn endpoints() -> Vec<Endpoint> {
    let detail = |text| Schema::object([("detail", Schema::constant(text))]);
    vec![
        Endpoint::new(
            Operation::new(
                Method::POST,
                "/api/password/reset/",
                "Mail a password reset link; the same answer whether or not the address has \
                 an account",
                200,
                detail(RESET_SENT),
            )
            .body(RESET),
            request_reset,
        ),
        Endpoint::new(
            Operation::new(
                Method::POST,
                "/api/password/reset/confirm/",
                "Set a new password with a mailed link's uid and token; every token and \
                 session of the user is revoked",
                200,
                detail(RESET_DONE),
            )
            .body(CONFIRM),
            confirm_reset,
        ),
        Endpoint::new(
            Operation::new(
                Method::POST,
                "/api/registration/verify-email/",
                "Verify an e-mail address with a mailed key",
                200,
                detail(OK),
            )
            .body(VERIFY)
            .also(
                404,
                "An unknown, used or expired key",
                Content::Json(Refusal::Detail.schema()),
            ),
            verify_email,
        ),
        Endpoint::new(
            Operation::new(
                Method::POST,
                "/api/registration/resend-email/",
                "Mail a new verification key to an unverified address; the same answer \
                 either way",
                200,
                detail(OK),
            )
            .body(RESEND),
            resend_email,
        ),
    ]
}

/// The `table`'s text fields, in its order, with DRF's errors for a missing or blank one.
fn texts<const N: usize>(fields: &Fields, table: &[Field; N]) -> Result<[String; N], ApiError> {
    let mut errors = FieldErrors::new();
    let values = table.map(|field| {
        let value = fields.required_text(field.name, &mut errors);
        if value.as_deref() == Some("") {
            errors.add(field.name, BLANK);
        }
        value.unwrap_or_default()
    });
    errors.into_result()?;
    Ok(values)
}

async fn request_reset(
    State(upstreams): State<Upstreams>,
    Anyone(caller): Anyone,
    fields: Fields,
) -> Result<Json<Value>, ApiError> {
    let [email] = texts(&fields, &RESET)?;
    let request = RequestPasswordResetRequest { email: Some(email) };
    upstreams
        .auth()
        .request_password_reset(caller.request(request))
        .await
        .map_err(ApiError::auth)?;
    Ok(Json(json!({ "detail": RESET_SENT })))
}

async fn confirm_reset(
    State(upstreams): State<Upstreams>,
    Anyone(caller): Anyone,
    fields: Fields,
) -> Result<Json<Value>, ApiError> {
    let [uid, token, new_password1, new_password2] = texts(&fields, &CONFIRM)?;
    let mut auth = upstreams.auth();
    if new_password1 != new_password2 {
        // dj-rest-auth judges the link before the form: a call without a password checks it.
        let check = ConfirmPasswordResetRequest {
            uid: Some(uid),
            token: Some(token),
            new_password: None,
        };
        return Err(
            match auth.confirm_password_reset(caller.request(check)).await {
                Err(status) => match ApiError::auth(status) {
                    errors if only_field(&errors, "new_password") => {
                        ApiError::field("new_password2", PASSWORDS_DIFFER)
                    }
                    other => other,
                },
                Ok(_) => ApiError::Internal("a reset without a password succeeded".to_owned()),
            },
        );
    }
    let request = ConfirmPasswordResetRequest {
        uid: Some(uid),
        token: Some(token),
        new_password: Some(new_password1),
    };
    auth.confirm_password_reset(caller.request(request))
        .await
        // Django's validators speak of the second field.
        .map_err(|status| ApiError::auth(status).renaming_field("new_password", "new_password2"))?;
    Ok(Json(json!({ "detail": RESET_DONE })))
}

/// Whether `error` holds field errors of `field` alone.
fn only_field(error: &ApiError, field: &str) -> bool {
    matches!(error, ApiError::Invalid(errors) if errors.iter().all(|(name, _)| name == field))
}

async fn verify_email(
    State(upstreams): State<Upstreams>,
    Anyone(caller): Anyone,
    fields: Fields,
) -> Result<Json<Value>, ApiError> {
    let [key] = texts(&fields, &VERIFY)?;
    upstreams
        .auth()
        .verify_email(caller.request(VerifyEmailRequest { key: Some(key) }))
        .await
        .map_err(|status| match status.code() {
            Code::NotFound => ApiError::NotFound(Missing::VerificationKey),
            _ => ApiError::auth(status),
        })?;
    Ok(Json(json!({ "detail": OK })))
}

async fn resend_email(
    State(upstreams): State<Upstreams>,
    Anyone(caller): Anyone,
    fields: Fields,
) -> Result<Json<Value>, ApiError> {
    let [email] = texts(&fields, &RESEND)?;
    let request = ResendEmailVerificationRequest { email: Some(email) };
    upstreams
        .auth()
        .resend_email_verification(caller.request(request))
        .await
        .map_err(ApiError::auth)?;
    Ok(Json(json!({ "detail": OK })))
}
