//! Seeds 003 (email registration and `key` login) and 004 (sign-up with a role, refresh,
//! dashboard).

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::unable_to_log_in;
use crate::helpers::{expect, expect_case, expect_detail, expect_status, is_token, spawn_stack};

/// Seed 003: registration with two passwords, `key` login, logout.
#[tokio::test]
async fn seed_003_email_registration_and_key_login() {
    let stack = spawn_stack().await;
    let example = json!({
        "first_name": "John",
        "last_name": "Doe",
        "email": "john.doe@example.com",
        "password1": "Password123",
        "password2": "Password123"
    });

    let registered = stack
        .post("/api/users/registration/", None, example.clone())
        .await;
    let john = expect_status(registered, StatusCode::CREATED).await;
    assert_eq!(
        john,
        json!({"id": john["id"], "first_name": "John", "last_name": "Doe",
               "email": "john.doe@example.com"})
    );

    // The example again, then with a new email but passwords that are refused: what each case
    // changes in the example, and the field errors.
    let refusals = [
        (
            "the same email again",
            json!({}),
            json!({"email": ["A user with this email already exists."]}),
        ),
        (
            "passwords that differ",
            json!({"email": "jane@example.com", "password2": "Password124"}),
            json!({"password2": ["The two password fields did not match."]}),
        ),
        (
            "a password without a numeral",
            json!({"email": "jane@example.com", "password1": "Password", "password2": "Password"}),
            json!({"password1": ["Password must contain at least one numeral."]}),
        ),
    ];
    for (case, changes, errors) in refusals {
        let mut body = example.clone();
        for (field, value) in changes.as_object().unwrap() {
            body[field] = value.clone();
        }
        let refused = stack.post("/api/users/registration/", None, body).await;
        expect_case(case, refused, StatusCode::BAD_REQUEST, errors).await;
    }

    let credentials = json!({"email": "john.doe@example.com", "password": "Password123"});
    let login = stack
        .post("/api/users/login/", None, credentials.clone())
        .await;
    let body = expect_status(login, StatusCode::OK).await;
    assert!(is_token(&body["key"]));
    assert_eq!(body.as_object().unwrap().len(), 1);
    let key = body["key"].as_str().unwrap().to_owned();

    let refused = stack
        .post(
            "/api/users/login/",
            None,
            json!({"email": "john.doe@example.com", "password": "Password999"}),
        )
        .await;
    expect(refused, StatusCode::BAD_REQUEST, unable_to_log_in()).await;

    let no_credentials = stack.post("/api/users/logout/", None, json!({})).await;
    expect_detail(
        no_credentials,
        StatusCode::BAD_REQUEST,
        "You should be logged in to logout. Check whether the token is passed.",
    )
    .await;
    let logout = stack
        .post("/api/users/logout/", Some(&key), json!({}))
        .await;
    expect_detail(logout, StatusCode::OK, "Successfully logged out.").await;
    let bad_key = stack
        .post("/api/users/logout/", Some(&key), json!({}))
        .await;
    expect_detail(bad_key, StatusCode::UNAUTHORIZED, "Invalid token.").await;

    // A disabled account is told apart, after a correct password only.
    let admin = stack.admin().await;
    let path = format!("/users/{}/", john["id"]);
    let disabled = stack
        .send(Method::PATCH, &path, &admin, json!({"is_active": false}))
        .await;
    assert_eq!(
        expect_status(disabled, StatusCode::OK).await["is_active"],
        false
    );
    let login = stack.post("/api/users/login/", None, credentials).await;
    expect(
        login,
        StatusCode::BAD_REQUEST,
        json!({"non_field_errors": ["User account is disabled."]}),
    )
    .await;
}

/// Seed 004: sign-up with a role, token login, dashboard, refresh, logout, invalid token.
#[tokio::test]
async fn seed_004_signup_refresh_and_dashboard() {
    let stack = spawn_stack().await;

    let signup = stack
        .post(
            "/api/signup/",
            None,
            json!({"username": "newuser", "email": "newuser@example.com",
                                           "password": "password123", "role": "CLERK"}),
        )
        .await;
    let body = expect_status(signup, StatusCode::CREATED).await;
    assert_eq!(
        body["user"],
        json!({"id": body["user"]["id"], "username": "newuser", "email": "newuser@example.com", "role": "CLERK"})
    );
    assert!(is_token(&body["token"]));

    let promoted = stack
        .post(
            "/api/signup/",
            None,
            json!({"username": "boss", "email": "boss@example.com",
                                           "password": "password123", "role": "MANAGER"}),
        )
        .await;
    expect(
        promoted,
        StatusCode::BAD_REQUEST,
        json!({"role": ["This role cannot be self-assigned."]}),
    )
    .await;

    let login = stack
        .post(
            "/api/api-token-auth/",
            None,
            json!({"username": "newuser", "password": "password123"}),
        )
        .await;
    let body = expect_status(login, StatusCode::OK).await;
    assert!(is_token(&body["token"]));
    let token = body["token"].as_str().unwrap().to_owned();
    let refused = stack
        .post(
            "/api/api-token-auth/",
            None,
            json!({"username": "newuser", "password": "password124"}),
        )
        .await;
    expect(refused, StatusCode::BAD_REQUEST, unable_to_log_in()).await;

    let dashboard = stack.get("/api/dashboard/", Some(&token)).await;
    expect(
        dashboard,
        StatusCode::OK,
        json!({"message": "Welcome to the Clerk Dashboard!"}),
    )
    .await;
    let admin = stack.admin().await;
    let dashboard = stack.get("/api/dashboard/", Some(&admin)).await;
    expect(
        dashboard,
        StatusCode::OK,
        json!({"message": "Welcome to the Admin Dashboard!"}),
    )
    .await;

    let refreshed = stack
        .post("/api/refresh-token/", Some(&token), json!({}))
        .await;
    let body = expect_status(refreshed, StatusCode::OK).await;
    assert!(is_token(&body["token"]));
    let new_token = body["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    expect_detail(
        stack.get("/api/dashboard/", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;

    let logout = stack
        .post("/api/logout/", Some(&new_token), json!({}))
        .await;
    expect(
        logout,
        StatusCode::OK,
        json!({"message": "Successfully logged out."}),
    )
    .await;
    let invalid = stack.get("/api/dashboard/", Some(&new_token)).await;
    expect_detail(invalid, StatusCode::UNAUTHORIZED, "Invalid token.").await;
}
