//! 429s of the auth service's per-account lockout, after wrong passwords at login or at a
//! password change, with DRF's message and `Retry-After`. (The gateway's own per-IP limit is
//! `routes::throttling`, on the fake.)

use reqwest::{StatusCode, header};
use serde_json::json;

use crate::helpers::{PASSWORD, credentials, expect_status, spawn_stack};

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
