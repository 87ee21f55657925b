//! API.md's 401 rows: no credentials, a malformed header, an unknown, expired or inactive key,
//! each with DRF's detail and `WWW-Authenticate: Token`.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::helpers::{Stack, credentials, expect_detail, expect_status, spawn_stack};

const NOT_PROVIDED: &str = "Authentication credentials were not provided.";

/// Sends `GET /api/me/` with the raw `Authorization` value and checks the 401.
async fn expect_header_refused(stack: &Stack, authorization: &[u8], detail: &str) {
    let response = stack
        .request(Method::GET, "/api/me/")
        .header(
            header::AUTHORIZATION,
            header::HeaderValue::from_bytes(authorization).unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Token");
    expect_detail(response, StatusCode::UNAUTHORIZED, detail).await;
}

#[tokio::test]
async fn unauthorized_without_credentials() {
    let stack = spawn_stack().await;
    let response = stack.get("/api/inventory/", None).await;
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Token");
    expect_detail(response, StatusCode::UNAUTHORIZED, NOT_PROVIDED).await;
    // Any other scheme is no credential at all.
    expect_header_refused(&stack, b"Basic YWxhZGRpbjpvcGVuc2VzYW1l", NOT_PROVIDED).await;
}

#[tokio::test]
async fn unauthorized_token_header_without_key() {
    let stack = spawn_stack().await;
    expect_header_refused(
        &stack,
        b"Token",
        "Invalid token header. No credentials provided.",
    )
    .await;
}

#[tokio::test]
async fn unauthorized_key_with_spaces() {
    let stack = spawn_stack().await;
    expect_header_refused(
        &stack,
        b"Token abc def",
        "Invalid token header. Token string should not contain spaces.",
    )
    .await;
}

#[tokio::test]
async fn unauthorized_key_not_utf8() {
    let stack = spawn_stack().await;
    expect_header_refused(
        &stack,
        b"Token abc\xff\xfe",
        "Invalid token header. Token string should not contain invalid characters.",
    )
    .await;
}

#[tokio::test]
async fn unauthorized_unknown_key_also_on_public_routes() {
    let stack = spawn_stack().await;
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    expect_header_refused(
        &stack,
        format!("Token {unknown}").as_bytes(),
        "Invalid token.",
    )
    .await;
    // `Bearer` and the keyword's case do not matter.
    expect_header_refused(
        &stack,
        format!("bearer {unknown}").as_bytes(),
        "Invalid token.",
    )
    .await;
    // A bad header on a public route is a 401 too, not an anonymous login.
    stack.clerk("alice").await;
    let login = stack
        .post("/api/login/", Some(unknown), credentials("alice"))
        .await;
    expect_detail(login, StatusCode::UNAUTHORIZED, "Invalid token.").await;
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
