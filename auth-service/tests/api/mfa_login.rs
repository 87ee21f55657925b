//! The second step of a login with a second factor: a challenge and a code give what the login
//! would have (the route name back, a session if asked); a code is never accepted twice, a
//! recovery code works once, a challenge expires and is used once, and wrong codes count toward
//! the account's lockout, which a right password does not reset.

use std::time::Duration;

use proto::{auth::v1 as pb, reasons};
use service_kit::testing::TestDatabase;
use tonic::{Code, Status};

use crate::{helpers::*, second_factor::*};

const INVALID_CODE: &str = "Invalid or already used code.";
const INVALID_CHALLENGE: &str = "Invalid or expired challenge; log in again.";

/// The challenge a right password gets for `username`.
async fn challenge(app: &TestApp, username: &str) -> String {
    let login = app
        .login(username, PASSWORD)
        .await
        .expect("a right password");
    assert!(login.token.is_none(), "{login:?}");
    login.mfa_challenge.expect("a challenge")
}

async fn complete(app: &TestApp, challenge: &str, code: &str) -> Result<pb::LoginResponse, Status> {
    let request = pb::CompleteMfaLoginRequest {
        challenge: Some(challenge.to_owned()),
        code: Some(code.to_owned()),
    };
    app.client()
        .complete_mfa_login(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn a_challenge_and_a_code_answer_what_the_login_asked_for(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let ann = enrolled(&app, "ann").await;
    let request = pb::LoginRequest {
        open_session: true,
        route: Some("/login/".to_owned()),
        ..login_request("ann", PASSWORD)
    };
    let login = app.client().login(request).await.unwrap().into_inner();
    let challenge = login.mfa_challenge.expect("a challenge");
    let done = complete(&app, &challenge, &code(&app, &ann.secret))
        .await
        .expect("completed");
    assert_eq!(done.route.as_deref(), Some("/login/"));
    assert_eq!(done.user.expect("the user").id, ann.user.id);
    let token = done.token.expect("a token").key;
    assert!(done.session.is_some());
    assert_eq!(
        app.validate(&token).await.unwrap().user.unwrap().id,
        ann.user.id
    );
}

async fn a_code_is_not_accepted_twice(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let ann = enrolled(&app, "ann").await;
    // The confirmation's code is one step old, inside the skew allowed, but used.
    let used = code_off(&app, &ann.secret, -1);
    let first = challenge(&app, "ann").await;
    assert_eq!(
        field_errors(complete(&app, &first, &used).await),
        [pair("code", INVALID_CODE)]
    );
    let fresh = code(&app, &ann.secret);
    complete(&app, &first, &fresh).await.expect("a fresh code");
    let second = challenge(&app, "ann").await;
    assert_eq!(
        field_errors(complete(&app, &second, &fresh).await),
        [pair("code", INVALID_CODE)]
    );
    app.advance(STEP);
    complete(&app, &second, &code(&app, &ann.secret))
        .await
        .expect("the next step's code");
}

async fn codes_one_step_either_side_are_accepted(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let ann = enrolled(&app, "ann").await;
    // Past the confirmation's step, a phone one step behind: the step before the service's.
    app.advance(STEP * 2);
    let first = challenge(&app, "ann").await;
    complete(&app, &first, &code_off(&app, &ann.secret, -1))
        .await
        .expect("one step behind");
    // A phone one step ahead (a later step than the last accepted).
    let second = challenge(&app, "ann").await;
    complete(&app, &second, &code_off(&app, &ann.secret, 1))
        .await
        .expect("one step ahead");
    // Two steps off is too far.
    app.advance(STEP * 3);
    let third = challenge(&app, "ann").await;
    assert_eq!(
        field_errors(complete(&app, &third, &code_off(&app, &ann.secret, 2)).await),
        [pair("code", INVALID_CODE)]
    );
}

async fn a_recovery_code_works_once(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let ann = enrolled(&app, "ann").await;
    let recovery = &ann.recovery_codes[3];
    let first = challenge(&app, "ann").await;
    let done = complete(&app, &first, &recovery.to_uppercase())
        .await
        .expect("a recovery code, typed in capitals");
    assert!(done.token.is_some());
    let second = challenge(&app, "ann").await;
    assert_eq!(
        field_errors(complete(&app, &second, recovery).await),
        [pair("code", INVALID_CODE)]
    );
    complete(&app, &second, &ann.recovery_codes[4])
        .await
        .expect("another recovery code");
}

async fn a_challenge_expires_and_is_used_once(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let ann = enrolled(&app, "ann").await;
    let expiring = challenge(&app, "ann").await;
    app.advance(Duration::from_secs(5 * 60));
    assert_eq!(
        field_errors(complete(&app, &expiring, &code(&app, &ann.secret)).await),
        [pair("challenge", INVALID_CHALLENGE)]
    );
    let once = challenge(&app, "ann").await;
    complete(&app, &once, &code(&app, &ann.secret))
        .await
        .expect("completed");
    app.advance(STEP);
    assert_eq!(
        field_errors(complete(&app, &once, &code(&app, &ann.secret)).await),
        [pair("challenge", INVALID_CHALLENGE)]
    );
    assert_eq!(
        field_errors(complete(&app, "not-a-challenge", &code(&app, &ann.secret)).await),
        [pair("challenge", INVALID_CHALLENGE)]
    );
}

/// A wrong code leaves the challenge usable; wrong codes count toward the lockout, a right
/// password in between does not reset the count, and once locked even the right code waits.
async fn wrong_codes_count_toward_the_lockout(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let threshold = app.config.lockout_threshold;
    assert_eq!(threshold, 5);
    let ann = enrolled(&app, "ann").await;
    let first = challenge(&app, "ann").await;
    for _ in 0..threshold - 1 {
        assert_eq!(
            field_errors(complete(&app, &first, &wrong_code(&app, &ann.secret)).await),
            [pair("code", INVALID_CODE)]
        );
    }
    // The password again: a new challenge, and the count goes on.
    let second = challenge(&app, "ann").await;
    assert_eq!(
        field_errors(complete(&app, &second, &wrong_code(&app, &ann.secret)).await),
        [pair("code", INVALID_CODE)]
    );
    assert_rejected(
        complete(&app, &first, &code(&app, &ann.secret)).await,
        Code::ResourceExhausted,
        reasons::ACCOUNT_LOCKED,
    );
    assert_rejected(
        app.login("ann", PASSWORD).await,
        Code::ResourceExhausted,
        reasons::ACCOUNT_LOCKED,
    );
    // After the delay the (still unexpired) challenge and the right code get in.
    app.advance(Duration::from_secs(1));
    complete(&app, &first, &code(&app, &ann.secret))
        .await
        .expect("after the delay");
}

/// A password change between the steps leaves the challenge unable to issue anything.
async fn a_password_change_withdraws_an_open_challenge(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let ann = enrolled(&app, "ann").await;
    let open = challenge(&app, "ann").await;
    let change = pb::ChangePasswordRequest {
        old_password: Some(PASSWORD.to_owned()),
        new_password: Some("Another123".to_owned()),
    };
    app.client()
        .change_password(authed(&ann.token, change))
        .await
        .expect("changed");
    let status = complete(&app, &open, &code(&app, &ann.secret))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

/// An account deactivated between the steps is told so, as a login after the password is.
async fn a_deactivated_account_cannot_complete_its_login(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let ann = enrolled(&app, "ann").await;
    let open = challenge(&app, "ann").await;
    let deactivate = pb::UpdateUserRequest {
        id: ann.user.id,
        is_active: Some(false),
        ..Default::default()
    };
    app.client()
        .update_user(authed(&admin, deactivate))
        .await
        .expect("deactivated");
    assert_rejected(
        complete(&app, &open, &code(&app, &ann.secret)).await,
        Code::PermissionDenied,
        reasons::USER_INACTIVE,
    );
}

service_kit::on_both_backends!(
    a_deactivated_account_cannot_complete_its_login,
    a_challenge_and_a_code_answer_what_the_login_asked_for,
    a_code_is_not_accepted_twice,
    codes_one_step_either_side_are_accepted,
    a_recovery_code_works_once,
    a_challenge_expires_and_is_used_once,
    wrong_codes_count_toward_the_lockout,
    a_password_change_withdraws_an_open_challenge,
);
