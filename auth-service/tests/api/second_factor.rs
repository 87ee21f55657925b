//! The second factor's lifecycle over gRPC: enrolment pending until a code confirms it (which
//! issues ten recovery codes), no second enrolment over a confirmed one, disabling by a code or
//! the password (a wrong one counted), and an admin's reset, which a non-admin cannot do.

use std::time::Duration;

use auth_service::{
    clock::Clock,
    totp::{self, TotpSecret},
};
use proto::{auth::v1 as pb, reasons};
use service_kit::testing::TestDatabase;
use tonic::{Code, Status};

use crate::helpers::*;

/// One TOTP step: after it, a code is one never accepted before.
pub const STEP: Duration = Duration::from_secs(30);

/// A user with a confirmed factor.
pub struct Enrolled {
    pub user: pb::User,
    pub token: String,
    pub secret: String,
    pub recovery_codes: Vec<String>,
}

/// The code an app shows for `secret` at the service's time.
pub fn code(app: &TestApp, secret: &str) -> String {
    code_off(app, secret, 0)
}

/// The code of the step `steps` from the service's: an app whose clock is off.
pub fn code_off(app: &TestApp, secret: &str, steps: i64) -> String {
    let secret = TotpSecret::from_base32(secret).expect("a base32 secret");
    let now = totp::step_of(app.clock.now().0.div_euclid(1_000_000));
    secret.code_at_step(now + steps)
}

/// A code of the same shape that is not the right one now.
pub fn wrong_code(app: &TestApp, secret: &str) -> String {
    let right: u32 = code(app, secret).parse().unwrap();
    format!("{:06}", (right + 500_000) % 1_000_000)
}

pub async fn begin(app: &TestApp, token: &str) -> Result<pb::BeginTotpEnrolmentResponse, Status> {
    app.client()
        .begin_totp_enrolment(authed(token, pb::BeginTotpEnrolmentRequest {}))
        .await
        .map(tonic::Response::into_inner)
}

pub async fn confirm(app: &TestApp, token: &str, code: String) -> Result<Vec<String>, Status> {
    let request = pb::ConfirmTotpEnrolmentRequest { code: Some(code) };
    let response = app
        .client()
        .confirm_totp_enrolment(authed(token, request))
        .await?;
    Ok(response.into_inner().recovery_codes)
}

/// Registers `username` and enrols and confirms a factor; the clock is then one step on, so
/// the next code is a fresh one.
pub async fn enrolled(app: &TestApp, username: &str) -> Enrolled {
    let (user, token) = app.user_with_token(username).await;
    let secret = begin(app, &token).await.expect("enrolment starts").secret;
    let recovery_codes = confirm(app, &token, code(app, &secret))
        .await
        .expect("the enrolment is confirmed");
    app.advance(STEP);
    Enrolled {
        user,
        token,
        secret,
        recovery_codes,
    }
}

pub async fn disable(
    app: &TestApp,
    token: &str,
    request: pb::DisableTotpRequest,
) -> Result<pb::DisableTotpResponse, Status> {
    app.client()
        .disable_totp(authed(token, request))
        .await
        .map(tonic::Response::into_inner)
}

async fn enrolment_is_pending_until_a_code_confirms_it(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let (_, token) = app.user_with_token("ann").await;
    let first = begin(&app, &token).await.expect("enrolment starts");
    assert!(
        first.otpauth_url.starts_with(&format!(
            "otpauth://totp/example.com:ann?secret={}&issuer=example.com",
            first.secret
        )),
        "{}",
        first.otpauth_url
    );
    assert!(
        first
            .otpauth_url
            .ends_with("&algorithm=SHA1&digits=6&period=30")
    );
    // Pending: the password alone still logs in.
    assert!(app.login("ann", PASSWORD).await.unwrap().token.is_some());
    // Enrolling again replaces the pending secret: the first one's codes no longer confirm.
    let second = begin(&app, &token).await.expect("enrolment restarts");
    assert_ne!(first.secret, second.secret);
    let stale = confirm(&app, &token, code(&app, &first.secret)).await;
    assert_eq!(
        field_errors(stale),
        [pair("code", "Invalid or already used code.")]
    );
    let codes = confirm(&app, &token, code(&app, &second.secret))
        .await
        .expect("confirmed");
    assert_eq!(codes.len(), 10);
    let unique: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), 10);
    // Confirmed: no second enrolment over it, and logins need the second step.
    assert_eq!(
        field_errors(begin(&app, &token).await),
        [pair(
            "non_field_errors",
            "Two-factor authentication is already enabled; disable it before enrolling again."
        )]
    );
    let login = app.login("ann", PASSWORD).await.unwrap();
    assert!(login.token.is_none() && login.user.is_none());
    assert_eq!(login.mfa_challenge.expect("a challenge").len(), 40);
}

async fn a_confirmation_without_a_pending_enrolment_is_refused(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let (_, token) = app.user_with_token("bea").await;
    assert_eq!(
        field_errors(confirm(&app, &token, "123456".to_owned()).await),
        [pair(
            "non_field_errors",
            "No two-factor enrolment is pending."
        )]
    );
}

async fn the_factor_is_disabled_by_a_code_or_by_the_password(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let ann = enrolled(&app, "ann").await;
    let by_password = |password: &str| pb::DisableTotpRequest {
        password: Some(password.to_owned()),
        ..Default::default()
    };
    assert_eq!(
        field_errors(disable(&app, &ann.token, by_password("Wrong1234")).await),
        [pair("password", "Wrong password.")]
    );
    assert_eq!(
        field_errors(disable(&app, &ann.token, pb::DisableTotpRequest::default()).await),
        [pair("non_field_errors", "Give a code or the password.")]
    );
    disable(&app, &ann.token, by_password(PASSWORD))
        .await
        .expect("disabled by the password");
    assert!(app.login("ann", PASSWORD).await.unwrap().token.is_some());

    // Enrolled again; now a wrong code, then a right one.
    let secret = begin(&app, &ann.token).await.unwrap().secret;
    confirm(&app, &ann.token, code(&app, &secret))
        .await
        .expect("confirmed again");
    app.advance(STEP);
    let by_code = |code: String| pb::DisableTotpRequest {
        code: Some(code),
        ..Default::default()
    };
    assert_eq!(
        field_errors(disable(&app, &ann.token, by_code(wrong_code(&app, &secret))).await),
        [pair("code", "Invalid or already used code.")]
    );
    disable(&app, &ann.token, by_code(code(&app, &secret)))
        .await
        .expect("disabled by a code");
    assert!(app.login("ann", PASSWORD).await.unwrap().token.is_some());
    assert_eq!(
        field_errors(disable(&app, &ann.token, by_password(PASSWORD)).await),
        [pair(
            "non_field_errors",
            "Two-factor authentication is not enabled."
        )]
    );
}

/// A wrong password for disabling counts as a wrong password for logging in does.
async fn wrong_passwords_for_disabling_count_toward_the_lockout(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let ann = enrolled(&app, "ann").await;
    for _ in 0..app.config.lockout_threshold {
        let request = pb::DisableTotpRequest {
            password: Some("Wrong1234".to_owned()),
            ..Default::default()
        };
        field_errors(disable(&app, &ann.token, request).await);
    }
    let request = pb::DisableTotpRequest {
        password: Some(PASSWORD.to_owned()),
        ..Default::default()
    };
    assert_rejected(
        disable(&app, &ann.token, request).await,
        Code::ResourceExhausted,
        reasons::ACCOUNT_LOCKED,
    );
}

async fn an_admin_resets_a_users_factor_and_no_one_else_can(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let ann = enrolled(&app, "ann").await;
    let (_, clerk) = app.user_with_token("cid").await;
    let reset = |token: &str, id: i64| {
        let mut client = app.client();
        let request = authed(token, pb::ResetSecondFactorRequest { id });
        async move { client.reset_second_factor(request).await }
    };
    assert_rejected(
        reset(&clerk, ann.user.id).await,
        Code::PermissionDenied,
        reasons::PERMISSION_DENIED,
    );
    // Refused and unchanged: ann still needs her second factor.
    assert!(app.login("ann", PASSWORD).await.unwrap().token.is_none());
    let status = reset(&admin, ann.user.id + 100).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    reset(&admin, ann.user.id)
        .await
        .expect("the admin resets it");
    assert!(app.login("ann", PASSWORD).await.unwrap().token.is_some());
    // Her recovery codes went with it, and she may enrol again.
    assert!(begin(&app, &ann.token).await.is_ok());
}

/// The factor, its recovery codes and open challenges go with their user (ON DELETE CASCADE).
async fn deleting_a_user_deletes_its_second_factor(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let ann = enrolled(&app, "ann").await;
    let login = app.login("ann", PASSWORD).await.unwrap();
    assert!(login.mfa_challenge.is_some());
    app.client()
        .delete_user(authed(&admin, pb::DeleteUserRequest { id: ann.user.id }))
        .await
        .expect("the user is deleted");
}

service_kit::on_both_backends!(
    deleting_a_user_deletes_its_second_factor,
    enrolment_is_pending_until_a_code_confirms_it,
    a_confirmation_without_a_pending_enrolment_is_refused,
    the_factor_is_disabled_by_a_code_or_by_the_password,
    wrong_passwords_for_disabling_count_toward_the_lockout,
    an_admin_resets_a_users_factor_and_no_one_else_can,
);
