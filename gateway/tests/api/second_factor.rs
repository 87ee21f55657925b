//! The second factor on the full stack: enrolment and confirmation, logins that answer a
//! challenge and complete with the route's own answer (a token for `/api/login/`, the cookie
//! session for `/login/`, a key for `/api/users/login/`), wrong codes locking the account,
//! disabling it, and an admin's reset that a clerk cannot do.

use std::time::Duration;

use auth_service::{
    clock::Clock,
    totp::{self, TotpSecret},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{PASSWORD, Stack, credentials, expect, expect_status, is_token, spawn_stack},
    sessions::set_cookie,
};

const STEP: Duration = Duration::from_secs(30);
const INVALID_CODE: &str = "Invalid or already used code.";

/// The code an app shows for `secret` at the auth service's time.
fn code(stack: &Stack, secret: &str) -> String {
    let secret = TotpSecret::from_base32(secret).expect("a base32 secret");
    secret.code_at_step(totp::step_of(stack.clock.now().0.div_euclid(1_000_000)))
}

/// Signs `username` up and confirms a second factor: the token, the secret and the recovery
/// codes. The clock is then one step on, so the next code is a fresh one.
async fn enrolled(stack: &Stack, username: &str) -> (String, String, Vec<String>) {
    let token = stack.clerk(username).await;
    let begun = stack.post("/api/mfa/totp/", Some(&token), json!({})).await;
    let begun = expect_status(begun, StatusCode::OK).await;
    let secret = begun["secret"].as_str().expect("a secret").to_owned();
    let url = begun["otpauth_url"].as_str().expect("a URL");
    assert!(
        url.starts_with(&format!(
            "otpauth://totp/example.com:{username}?secret={secret}"
        )),
        "{url}"
    );
    let confirm = json!({ "code": code(stack, &secret) });
    let confirmed = stack
        .post("/api/mfa/totp/confirm/", Some(&token), confirm)
        .await;
    let confirmed = expect_status(confirmed, StatusCode::OK).await;
    let recovery: Vec<String> = serde_json::from_value(confirmed["recovery_codes"].clone())
        .expect("a list of recovery codes");
    assert_eq!(recovery.len(), 10);
    stack.clock.advance(STEP);
    (token, secret, recovery)
}

/// The challenge that a right password at login route `path` gets.
async fn challenge(stack: &Stack, path: &str, body: Value) -> String {
    let response = stack.post(path, None, body).await;
    let body = expect_status(response, StatusCode::OK).await;
    assert_eq!(body["mfa_required"], json!(true), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    body["challenge"].as_str().expect("a challenge").to_owned()
}

async fn complete(stack: &Stack, challenge: &str, code: &str) -> reqwest::Response {
    let body = json!({ "challenge": challenge, "code": code });
    stack.post("/api/login/mfa/", None, body).await
}

#[tokio::test]
async fn a_login_with_a_second_factor_completes_with_the_routes_own_answer() {
    let stack = spawn_stack().await;
    let (_, secret, recovery) = enrolled(&stack, "alice").await;

    let first = challenge(&stack, "/api/login/", credentials("alice")).await;
    let done = complete(&stack, &first, &code(&stack, &secret)).await;
    let body = expect_status(done, StatusCode::OK).await;
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    assert!(is_token(&body["token"]), "{body}");

    // `/login/`: nothing is set until the second step, which opens the cookie session.
    let response = stack.post("/login/", None, credentials("alice")).await;
    assert!(set_cookie(&response, "sessionid").is_none());
    let body = expect_status(response, StatusCode::OK).await;
    let second = body["challenge"].as_str().expect("a challenge").to_owned();
    stack.clock.advance(STEP);
    let done = complete(&stack, &second, &code(&stack, &secret)).await;
    let session = set_cookie(&done, "sessionid").expect("a session cookie");
    assert!(!session.is_empty());
    let body = expect_status(done, StatusCode::OK).await;
    assert_eq!(body["message"], "user logged in");
    assert_eq!(body["username"], "alice");
    assert!(is_token(&body["token"]), "{body}");

    // `/api/users/login/` by email, completed with a recovery code: its `key`.
    let by_email = json!({ "email": "alice@example.com", "password": PASSWORD });
    let third = challenge(&stack, "/api/users/login/", by_email).await;
    let done = complete(&stack, &third, &recovery[0]).await;
    let body = expect_status(done, StatusCode::OK).await;
    assert!(is_token(&body["key"]), "{body}");

    // The recovery code and the challenge are used up.
    let fourth = challenge(&stack, "/api/login/", credentials("alice")).await;
    let again = complete(&stack, &fourth, &recovery[0]).await;
    expect(
        again,
        StatusCode::BAD_REQUEST,
        json!({ "code": [INVALID_CODE] }),
    )
    .await;
    let reused = complete(&stack, &third, &recovery[1]).await;
    let body = expect_status(reused, StatusCode::BAD_REQUEST).await;
    assert!(body.get("challenge").is_some(), "{body}");
}

#[tokio::test]
async fn wrong_codes_lock_the_account() {
    let stack = spawn_stack().await;
    let (_, secret, _) = enrolled(&stack, "alice").await;
    let open = challenge(&stack, "/api/login/", credentials("alice")).await;
    let right: u32 = code(&stack, &secret).parse().unwrap();
    let wrong = format!("{:06}", (right + 500_000) % 1_000_000);
    for _ in 0..stack.auth_config.lockout_threshold {
        let response = complete(&stack, &open, &wrong).await;
        expect(
            response,
            StatusCode::BAD_REQUEST,
            json!({ "code": [INVALID_CODE] }),
        )
        .await;
    }
    let locked = complete(&stack, &open, &code(&stack, &secret)).await;
    expect_status(locked, StatusCode::TOO_MANY_REQUESTS).await;
    let login = stack.post("/api/login/", None, credentials("alice")).await;
    assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_factor_is_disabled_by_its_user_or_reset_by_an_admin() {
    let stack = spawn_stack().await;
    let admin = stack.admin().await;
    let (token, secret, _) = enrolled(&stack, "alice").await;
    let wrong = json!({ "password": "Wrong1234" });
    let refused = stack
        .send(Method::DELETE, "/api/mfa/totp/", &token, wrong)
        .await;
    expect(
        refused,
        StatusCode::BAD_REQUEST,
        json!({ "password": ["Wrong password."] }),
    )
    .await;
    let by_code = json!({ "code": code(&stack, &secret) });
    let disabled = stack
        .send(Method::DELETE, "/api/mfa/totp/", &token, by_code)
        .await;
    assert_eq!(disabled.status(), StatusCode::NO_CONTENT);
    stack.log_in("alice").await;

    // Enrolled again (a clerk's), then reset: by a clerk, refused; by the admin, done.
    let (bob_token, _, _) = enrolled(&stack, "bob").await;
    let me = expect_status(
        stack.get("/api/me/", Some(&bob_token)).await,
        StatusCode::OK,
    )
    .await;
    let path = format!("/api/users/{}/mfa/", me["id"]);
    let refused = stack.send(Method::DELETE, &path, &token, json!({})).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    challenge(&stack, "/api/login/", credentials("bob")).await;
    let reset = stack.send(Method::DELETE, &path, &admin, json!({})).await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    stack.log_in("bob").await;
}
