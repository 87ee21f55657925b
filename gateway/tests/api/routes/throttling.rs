//! The gateway's own 429: its per-client-IP limit on the routes that check a password or a code
//! (login and its second step, registration, password change, the second factor's) or mail
//! one (password reset, e-mail verification), shared by them and by no other route, with DRF's
//! message and
//! `Retry-After`. The fake refuses every password; what was throttled never reached it. (The
//! auth service's account lockout is `crate::throttling`, on the full stack.)

use reqwest::{Method, StatusCode, header};
use serde_json::json;
use service_kit::validation::FieldErrors;

use crate::{
    fake_upstream::{
        CHANGE_PASSWORD, COMPLETE_MFA_LOGIN, CONFIRM_PASSWORD_RESET, DISABLE_TOTP, LOGIN, REGISTER,
        REQUEST_PASSWORD_RESET, RESEND_EMAIL_VERIFICATION, spawn_fake_with, wrong_password,
    },
    helpers::{expect, expect_status},
};

/// A gateway that lets each client address three password checks a minute.
async fn three_a_minute() -> crate::fake_upstream::FakeStack {
    spawn_fake_with(|config| config.auth_rate = Some("3/minute".parse().unwrap())).await
}

#[tokio::test]
async fn login_and_registration_are_throttled_per_ip() {
    let stack = three_a_minute().await;
    stack.fake.answer(LOGIN, Err(wrong_password()));
    let attempt = json!({"username": "nobody", "password": "wrong-pass1"});
    for _ in 0..3 {
        let response = stack.post("/api/login/", None, attempt.clone()).await;
        let invalid = json!({"error": "Invalid credentials"});
        expect(response, StatusCode::UNAUTHORIZED, invalid).await;
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
    assert_eq!(stack.fake.requests(LOGIN).len(), 3);
    assert!(stack.fake.requests(REGISTER).is_empty());
}

#[tokio::test]
async fn password_change_is_throttled_like_login() {
    let stack = three_a_minute().await;
    let mut taken = FieldErrors::new();
    taken.add("username", "A user with that username already exists.");
    stack.fake.answer(REGISTER, Err(taken.into()));
    let mut wrong = FieldErrors::new();
    wrong.add("old_password", "Wrong password.");
    stack.fake.answer(CHANGE_PASSWORD, Err(wrong.into()));
    let signup = json!({"username": "alice", "email": "a@example.com", "password": "Password1"});
    let response = stack.post("/api/signup/", None, signup).await; // one of the three
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let guess = json!({"old_password": "Guess1234", "new_password": "Newpass123"});
    for _ in 0..2 {
        let response = stack
            .post("/api/password/change/", Some("key-1"), guess.clone())
            .await;
        let refused = json!({"old_password": ["Wrong password."]});
        expect(response, StatusCode::BAD_REQUEST, refused).await;
    }
    let throttled = stack
        .post("/api/password/change/", Some("key-1"), guess)
        .await;
    assert!(throttled.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(stack.fake.requests(CHANGE_PASSWORD).len(), 2);
}

/// The second step of a login and disabling the second factor check a code: a guesser of codes
/// gets the same three tries a minute as one of passwords, shared with them.
#[tokio::test]
async fn second_factor_codes_are_throttled_like_passwords() {
    let stack = three_a_minute().await;
    let wrong_code = || FieldErrors::single("code", "Invalid or already used code.").into();
    stack.fake.answer(COMPLETE_MFA_LOGIN, Err(wrong_code()));
    stack.fake.answer(DISABLE_TOTP, Err(wrong_code()));
    let refused = json!({"code": ["Invalid or already used code."]});
    let guess = json!({"challenge": "0123456789abcdef0123456789abcdef01234567", "code": "123456"});
    for _ in 0..2 {
        let response = stack.post("/api/login/mfa/", None, guess.clone()).await;
        expect(response, StatusCode::BAD_REQUEST, refused.clone()).await;
    }
    let code = json!({"code": "123456"});
    let response = stack
        .send(Method::DELETE, "/api/mfa/totp/", "key-1", code.clone())
        .await;
    expect(response, StatusCode::BAD_REQUEST, refused).await;
    let throttled = stack
        .send(Method::DELETE, "/api/mfa/totp/", "key-1", code)
        .await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let throttled = stack.post("/api/login/mfa/", None, guess).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(stack.fake.requests(COMPLETE_MFA_LOGIN).len(), 2);
    assert_eq!(stack.fake.requests(DISABLE_TOTP).len(), 1);
}

/// Password reset and e-mail verification each send mail or check a secret: they share the
/// login routes' limit, so nobody mails an inbox or guesses a token faster than a password.
#[tokio::test]
async fn password_reset_and_verification_are_throttled_like_login() {
    let stack = three_a_minute().await;
    stack
        .fake
        .answer(REQUEST_PASSWORD_RESET, Ok(Default::default()));
    let bad_token = || FieldErrors::single("token", "Invalid value").into();
    stack.fake.answer(CONFIRM_PASSWORD_RESET, Err(bad_token()));
    stack
        .fake
        .answer(RESEND_EMAIL_VERIFICATION, Ok(Default::default()));
    let reset = json!({"email": "a@example.com"});
    let sent = json!({"detail": "Password reset e-mail has been sent."});
    expect(
        stack
            .post("/api/password/reset/", None, reset.clone())
            .await,
        StatusCode::OK,
        sent,
    )
    .await;
    let confirm = json!({
        "uid": "MQ", "token": "0123456789abcdef0123456789abcdef01234567",
        "new_password1": "Brand-new-9", "new_password2": "Brand-new-9",
    });
    let refused = json!({"token": ["Invalid value"]});
    let response = stack
        .post("/api/password/reset/confirm/", None, confirm.clone())
        .await;
    expect(response, StatusCode::BAD_REQUEST, refused).await;
    let resend = stack
        .post("/api/registration/resend-email/", None, reset.clone())
        .await;
    expect(resend, StatusCode::OK, json!({"detail": "ok"})).await;
    for (path, body) in [
        ("/api/password/reset/", &reset),
        ("/api/password/reset/confirm/", &confirm),
        ("/api/registration/verify-email/", &json!({"key": "k"})),
        ("/api/registration/resend-email/", &reset),
    ] {
        let throttled = stack.post(path, None, body.clone()).await;
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
    }
    assert_eq!(stack.fake.requests(REQUEST_PASSWORD_RESET).len(), 1);
    assert_eq!(stack.fake.requests(CONFIRM_PASSWORD_RESET).len(), 1);
}
