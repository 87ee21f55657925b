//! API.md's error rows where the services' behaviour is what is checked, on the full stack:
//! the services' field errors (with the gateway's own, and NUL characters on either database),
//! a key that expires or whose user is deactivated (401), stock that would go below zero (409,
//! nothing changed). How the gateway answers each gRPC status, and the errors it answers
//! without asking a service, are `routes::errors` and `routes::refusals`, on the fake. (429 is
//! in `throttling` and `routes::throttling`, the CSRF 403s in `sessions` and `routes::sessions`,
//! the 500 in `faults`.)

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use service_kit::testing::TestDatabase;

use crate::helpers::{
    Hops, PASSWORD, Stack, expect, expect_detail, expect_status, spawn_stack, spawn_stack_on,
};

#[tokio::test]
async fn bad_request_with_the_services_field_errors() {
    let stack = spawn_stack().await;
    let response = stack
        .post(
            "/api/signup/",
            None,
            json!({"username": "", "email": "e@example.com"}),
        )
        .await;
    expect(response, StatusCode::BAD_REQUEST,
           json!({"username": ["This field may not be blank."], "password": ["This field is required."]})).await;
}

/// A NUL character in any text field is DRF's field error, on either database (PostgreSQL
/// cannot store one; SQLite would have).
async fn null_characters_are_field_errors(stack: Stack) {
    let nul = json!(["Null characters are not allowed."]);
    let signup = stack
        .post(
            "/api/signup/",
            None,
            json!({"username": "al\0ice", "email": "a@example.com", "password": PASSWORD}),
        )
        .await;
    expect(signup, StatusCode::BAD_REQUEST, json!({"username": nul})).await;
    let register = stack
        .post(
            "/api/register/",
            None,
            json!({"username": "bob", "email": "b\0@example.com", "password": PASSWORD,
                   "first_name": "B\0b", "last_name": "\0"}),
        )
        .await;
    expect(
        register,
        StatusCode::BAD_REQUEST,
        json!({"email": nul, "first_name": nul, "last_name": nul}),
    )
    .await;

    let admin = stack.admin().await;
    let product = stack
        .post(
            "/api/products/",
            Some(&admin),
            json!({"name": "Wid\0get", "description": "a\0", "price": "1.00"}),
        )
        .await;
    expect(
        product,
        StatusCode::BAD_REQUEST,
        json!({"name": nul, "description": nul}),
    )
    .await;
    let id = stack.product(&admin, "Widget", 1).await;
    let patch = stack
        .send(
            Method::PATCH,
            &format!("/api/products/{id}/"),
            &admin,
            json!({"description": "\0"}),
        )
        .await;
    expect(patch, StatusCode::BAD_REQUEST, json!({"description": nul})).await;
    let me = stack
        .send(
            Method::PATCH,
            "/users/1/",
            &admin,
            json!({"first_name": "\0"}),
        )
        .await;
    expect(me, StatusCode::BAD_REQUEST, json!({"first_name": nul})).await;
}

#[tokio::test]
async fn null_characters_are_field_errors_on_sqlite() {
    null_characters_are_field_errors(spawn_stack().await).await;
}

#[tokio::test]
async fn null_characters_are_field_errors_on_postgres() {
    let (Some(auth), Some(inventory)) = (
        TestDatabase::postgres().await,
        TestDatabase::postgres().await,
    ) else {
        return;
    };
    null_characters_are_field_errors(
        spawn_stack_on([auth, inventory], Hops::Plaintext, |_| {}).await,
    )
    .await;
}

/// The route's own errors (a missing confirmation match) and the service's (password rules, a
/// taken email) come back together, as DRF reports every field at once; nothing is created.
#[tokio::test]
async fn field_errors_of_the_route_and_the_service_come_together() {
    let stack = spawn_stack().await;
    let registration = |email: &str, password1: &str, password2: &str| {
        json!({"first_name": "John", "last_name": "Doe", "email": email,
               "password1": password1, "password2": password2})
    };
    let first = stack
        .post(
            "/api/users/registration/",
            None,
            registration("john.doe@example.com", "Password123", "Password123"),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let response = stack
        .post(
            "/api/users/registration/",
            None,
            registration("JOHN.DOE@example.com", "short", "other"),
        )
        .await;
    expect(
        response,
        StatusCode::BAD_REQUEST,
        json!({
            "password2": ["The two password fields did not match."],
            "password1": [
                "Password must be at least 8 characters long.",
                "Password must contain at least one numeral."
            ],
            "email": ["A user with this email already exists."]
        }),
    )
    .await;
    let fixed = stack
        .post(
            "/api/users/registration/",
            None,
            registration("jane@example.com", "Password123", "Password123"),
        )
        .await;
    expect(
        fixed,
        StatusCode::CREATED,
        json!({"id": 2, "first_name": "John", "last_name": "Doe", "email": "jane@example.com"}),
    )
    .await;
}

#[tokio::test]
async fn conflict_on_insufficient_stock() {
    let stack = spawn_stack().await;
    let admin = stack.admin().await;
    let manager = stack.manager(&admin, "mia").await;
    let id = stack.product(&manager, "Bolt", 3).await;
    let path = format!("/api/products/{id}/adjust-stock/");
    let taken = stack
        .post(&path, Some(&manager), json!({"delta": -2}))
        .await;
    assert_eq!(expect_status(taken, StatusCode::OK).await["quantity"], 1);
    let refused = stack
        .post(&path, Some(&manager), json!({"delta": -2}))
        .await;
    expect_detail(refused, StatusCode::CONFLICT, "Insufficient stock.").await;
    let unchanged = stack
        .get(&format!("/api/products/{id}/"), Some(&manager))
        .await;
    assert_eq!(
        expect_status(unchanged, StatusCode::OK).await["quantity"],
        1
    );
}

#[tokio::test]
async fn unauthorized_expired_key() {
    let stack = spawn_stack().await;
    let token = stack.clerk("alice").await;
    expect_status(stack.get("/api/me/", Some(&token)).await, StatusCode::OK).await;
    stack
        .clock
        .advance(stack.auth_config.token_ttl + Duration::from_secs(1));
    expect_detail(
        stack.get("/api/me/", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "Token has expired.",
    )
    .await;
    // It is deleted on that use.
    expect_detail(
        stack.get("/api/me/", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
}

#[tokio::test]
async fn unauthorized_inactive_user() {
    let stack = spawn_stack().await;
    let admin = stack.admin().await;
    let token = stack.clerk("alice").await;
    let me = expect_status(stack.get("/api/me/", Some(&token)).await, StatusCode::OK).await;
    let path = format!("/users/{}/", me["id"]);
    let response = stack
        .send(Method::PATCH, &path, &admin, json!({"is_active": "false"}))
        .await;
    expect_status(response, StatusCode::OK).await;
    expect_detail(
        stack.get("/api/me/", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "User inactive or deleted.",
    )
    .await;
}
