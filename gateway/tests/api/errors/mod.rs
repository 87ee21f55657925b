//! One test per row of API.md's error tables: the 401 cases, 403, 404, 405, 415, 400 (parse
//! error, an unreadable body and field errors), 413 and 409. (429 is in `throttling`, the CSRF
//! 403s in `sessions`, the 500, 503 and 504 in `faults`.) The 401 cases are in `unauthorized`.

mod unauthorized;

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use service_kit::testing::TestDatabase;

use crate::helpers::{
    PASSWORD, Stack, expect, expect_detail, expect_status, raw_exchange, spawn_stack,
    spawn_stack_on,
};

#[tokio::test]
async fn forbidden_without_permission() {
    let stack = spawn_stack().await;
    let clerk = stack.clerk("alice").await;
    let response = stack
        .post(
            "/api/products/",
            Some(&clerk),
            json!({"name": "x", "price": "1.00"}),
        )
        .await;
    expect_detail(
        response,
        StatusCode::FORBIDDEN,
        "You do not have permission to perform this action.",
    )
    .await;
}

#[tokio::test]
async fn not_found_objects_and_routes() {
    let stack = spawn_stack().await;
    let admin = stack.admin().await;
    expect_detail(
        stack.get("/api/products/999/", Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "No Product matches the given query.",
    )
    .await;
    expect_detail(
        stack.get("/users/999/", Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "No User matches the given query.",
    )
    .await;
    expect_detail(
        stack.get("/api/products/abc/", Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "Not found.",
    )
    .await;
    expect_detail(
        stack.get("/api/nothing-here/", None).await,
        StatusCode::NOT_FOUND,
        "Not found.",
    )
    .await;
}

#[tokio::test]
async fn method_not_allowed_with_allow_header() {
    let stack = spawn_stack().await;
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
    let stack = spawn_stack().await;
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
}

#[tokio::test]
async fn bad_request_on_malformed_json() {
    let stack = spawn_stack().await;
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
}

#[tokio::test]
async fn bad_request_with_field_errors() {
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
    let admin = stack.admin().await;
    let response = stack
        .post(
            "/api/products/",
            Some(&admin),
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
        .post("/api/products/", Some(&admin), json!([1, 2]))
        .await;
    expect(
        response,
        StatusCode::BAD_REQUEST,
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    )
    .await;
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
    null_characters_are_field_errors(spawn_stack_on([auth, inventory], |_| {}).await).await;
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

/// A body that cannot be read (here a chunk size that is not hexadecimal) is the client's
/// fault: DRF's 400 for a request it cannot parse, not a 500.
#[tokio::test]
async fn bad_request_on_a_broken_chunked_body() {
    let stack = spawn_stack().await;
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
    let stack = spawn_stack().await;
    let response = stack
        .request(Method::POST, "/api/login/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
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
