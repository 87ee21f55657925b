//! What the gateway refuses without asking a service (the fake only counts that none was
//! asked): a missing or malformed `Authorization` (401), an unknown route (404), a method the
//! route lacks (405), a body of another media type (415), an unparsable or unreadable body or
//! fields of the wrong type (400), a body over the limit (413).

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::{
    fake_upstream::{CREATE_PRODUCT, LOGIN, VALIDATE_TOKEN, spawn_fake},
    helpers::{Http, expect, expect_detail, expect_status, raw_exchange},
};

const NOT_PROVIDED: &str = "Authentication credentials were not provided.";

/// Sends `GET /api/me/` with the raw `Authorization` value and checks the 401.
pub(super) async fn expect_header_refused(stack: &Http, authorization: &[u8], detail: &str) {
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

/// What the gateway refuses before asking anyone: no credentials on a protected route, and an
/// `Authorization` header DRF cannot read.
#[tokio::test]
async fn unauthorized_without_credentials_or_with_a_malformed_header() {
    let stack = spawn_fake().await;
    let response = stack.get("/api/inventory/", None).await;
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Token");
    expect_detail(response, StatusCode::UNAUTHORIZED, NOT_PROVIDED).await;
    // Any other scheme is no credential at all.
    expect_header_refused(&stack, b"Basic YWxhZGRpbjpvcGVuc2VzYW1l", NOT_PROVIDED).await;
    for (authorization, detail) in [
        (
            &b"Token"[..],
            "Invalid token header. No credentials provided.",
        ),
        (
            b"Token abc def",
            "Invalid token header. Token string should not contain spaces.",
        ),
        (
            b"Token abc\xff\xfe",
            "Invalid token header. Token string should not contain invalid characters.",
        ),
    ] {
        expect_header_refused(&stack, authorization, detail).await;
    }
    // None of these reached a service.
    assert!(stack.fake.requests(VALIDATE_TOKEN).is_empty());
}

#[tokio::test]
async fn method_not_allowed_with_allow_header() {
    let stack = spawn_fake().await;
    let response = stack.get("/api/login/", None).await;
    assert_eq!(response.headers()[header::ALLOW], "POST");
    expect_detail(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "Method \"GET\" not allowed.",
    )
    .await;
}

#[tokio::test]
async fn unsupported_media_type() {
    let stack = spawn_fake().await;
    let response = stack
        .request(Method::POST, "/api/login/")
        .header(header::CONTENT_TYPE, "text/plain")
        .body("username=alice")
        .send()
        .await
        .unwrap();
    expect_detail(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Unsupported media type \"text/plain\" in request.",
    )
    .await;
    assert!(stack.fake.requests(LOGIN).is_empty());
}

#[tokio::test]
async fn bad_request_on_malformed_json() {
    let stack = spawn_fake().await;
    let response = stack
        .request(Method::POST, "/api/login/")
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    let body = expect_status(response, StatusCode::BAD_REQUEST).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("JSON parse error - ")),
        "{body}"
    );
    assert!(stack.fake.requests(LOGIN).is_empty());
}

/// Fields the gateway reads itself: a value of the wrong type, a body that is no object. (The
/// services' own field errors are in `crate::errors`; how any reach the client is in `errors`.)
#[tokio::test]
async fn bad_request_with_the_gateways_field_errors() {
    let stack = spawn_fake().await;
    let response = stack
        .post(
            "/api/products/",
            Some("admin-key"),
            json!({"name": "x", "price": "1.00", "quantity": "many"}),
        )
        .await;
    expect(
        response,
        StatusCode::BAD_REQUEST,
        json!({"quantity": ["A valid integer is required."]}),
    )
    .await;
    let response = stack
        .post("/api/products/", Some("admin-key"), json!([1, 2]))
        .await;
    expect(
        response,
        StatusCode::BAD_REQUEST,
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    )
    .await;
    assert!(stack.fake.requests(CREATE_PRODUCT).is_empty());
}

/// A body that cannot be read (here a chunk size that is not hexadecimal) is the client's
/// fault: DRF's 400 for a request it cannot parse, not a 500.
#[tokio::test]
async fn bad_request_on_a_broken_chunked_body() {
    let stack = spawn_fake().await;
    let response = raw_exchange(
        &stack.base,
        b"POST /api/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(
        response.ends_with(r#"{"detail":"Malformed request."}"#),
        "{response}"
    );
}

#[tokio::test]
async fn payload_too_large() {
    let stack = spawn_fake().await;
    let response = stack
        .request(Method::POST, "/api/login/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    expect_detail(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body exceeds the limit of 1 MiB.",
    )
    .await;
    assert!(stack.fake.requests(LOGIN).is_empty());
}
