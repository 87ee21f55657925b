//! 429s: the gateway's per-IP limit on login and registration routes, and the auth service's
//! per-account lockout, both with DRF's message and `Retry-After`.

use reqwest::{StatusCode, header};
use serde_json::json;

use crate::helpers::{PASSWORD, credentials, expect_status, spawn_stack, spawn_stack_with};

#[tokio::test]
async fn login_and_registration_are_throttled_per_ip() {
    let stack =
        spawn_stack_with(|config| config.auth_rate = Some("3/minute".parse().unwrap())).await;
    let attempt = json!({"username": "nobody", "password": "wrong-pass1"});
    for _ in 0..3 {
        let response = stack.post("/api/login/", None, attempt.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = stack.post("/api/v1/login/", None, attempt).await;
    let retry_after: u64 = throttled.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body = expect_status(throttled, StatusCode::TOO_MANY_REQUESTS).await;
    let unit = if retry_after == 1 {
        "second"
    } else {
        "seconds"
    };
    assert_eq!(
        body,
        json!({"detail": format!("Request was throttled. Expected available in {retry_after} {unit}.")})
    );
    // Registration shares the limit; other routes do not.
    let signup = stack.post("/api/signup/", None, json!({})).await;
    assert_eq!(signup.status(), StatusCode::TOO_MANY_REQUESTS);
    let inventory = stack.get("/api/inventory/", None).await;
    assert_eq!(inventory.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_locked_account_gets_429_with_retry_after() {
    let stack = spawn_stack().await;
    stack.clerk("alice").await;
    let wrong = json!({"username": "alice", "password": "wrong-pass1"});
    let threshold = stack.auth_config.lockout_threshold;
    for _ in 0..threshold {
        let response = stack.post("/api/login/", None, wrong.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = stack.post("/api/login/", None, credentials("alice")).await;
    assert!(locked.headers().contains_key(header::RETRY_AFTER));
    let body = expect_status(locked, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Request was throttled. Expected available in ")),
        "{body}"
    );
}

#[tokio::test]
async fn password_change_is_throttled_like_login() {
    let stack =
        spawn_stack_with(|config| config.auth_rate = Some("3/minute".parse().unwrap())).await;
    let token = stack.clerk("alice").await; // registration: one of the three
    let guess = json!({"old_password": "Guess1234", "new_password": "Newpass123"});
    for _ in 0..2 {
        let response = stack
            .post("/api/password/change/", Some(&token), guess.clone())
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    let throttled = stack
        .post("/api/password/change/", Some(&token), guess)
        .await;
    assert!(throttled.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn wrong_old_passwords_lock_the_account_with_retry_after() {
    let stack = spawn_stack().await;
    let token = stack.clerk("alice").await;
    let guess = json!({"old_password": "Guess1234", "new_password": "Newpass123"});
    for _ in 0..stack.auth_config.lockout_threshold {
        let response = stack
            .post("/api/password/change/", Some(&token), guess.clone())
            .await;
        let body = expect_status(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(
            body,
            json!({"old_password": ["Your old password was entered incorrectly. Please enter it again."]})
        );
    }
    let right = json!({"old_password": PASSWORD, "new_password": "Newpass123"});
    let locked = stack
        .post("/api/password/change/", Some(&token), right)
        .await;
    assert!(locked.headers().contains_key(header::RETRY_AFTER));
    expect_status(locked, StatusCode::TOO_MANY_REQUESTS).await;
    // The login of the same account from the same client is locked too.
    let login = stack.post("/api/login/", None, credentials("alice")).await;
    assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);
}
