//! The example requests of the five documents in `shared/seeds/`, sent as written, get the
//! documented responses (API.md decides where a document is vague or contradicts another).
//! Seed 000 here; 001 and 002 (session login, user admin, versioned login) in `sessions`; 003
//! and 004 (email registration, sign-up with a role) in `signups`.

mod sessions;
mod signups;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, expect, expect_detail, expect_status, is_token, spawn_stack};

/// The body of a refused login on the routes of seeds 000, 001 and 002.
fn invalid_credentials() -> Value {
    json!({"error": "Invalid credentials"})
}

/// The body of a refused login on the routes of seeds 003 and 004 (DRF's `ObtainAuthToken`).
fn unable_to_log_in() -> Value {
    json!({"non_field_errors": ["Unable to log in with provided credentials."]})
}

/// DRF's 403 detail, for a clerk at a route that is not for clerks.
const NO_PERMISSION: &str = "You do not have permission to perform this action.";

/// Seed 000: register, token login, products, inventory, detail, logout.
#[tokio::test]
async fn seed_000_token_auth_and_inventory() {
    let stack = spawn_stack().await;

    let registered = stack
        .post(
            "/api/register/",
            None,
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    let user = expect_status(registered, StatusCode::CREATED).await;
    assert_eq!(
        user,
        json!({"id": user["id"], "username": "alice", "email": null, "first_name": "",
               "last_name": "", "role": "CLERK"})
    );

    let login = stack
        .post(
            "/api/login/",
            None,
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    let body = expect_status(login, StatusCode::OK).await;
    assert!(is_token(&body["token"]), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1);
    let clerk = body["token"].as_str().unwrap().to_owned();

    let refused = stack
        .post(
            "/api/login/",
            None,
            json!({"username": "alice", "password": "wrong-pass1"}),
        )
        .await;
    expect(refused, StatusCode::UNAUTHORIZED, invalid_credentials()).await;

    // Only staff (or a MANAGER/ADMIN) may create products.
    let product =
        json!({"name": "Widget", "description": "A widget", "price": 19.99, "quantity": 5});
    let forbidden = stack
        .post("/api/products/", Some(&clerk), product.clone())
        .await;
    expect_detail(forbidden, StatusCode::FORBIDDEN, NO_PERMISSION).await;

    let admin = stack.admin().await;
    let created = stack.post("/api/products/", Some(&admin), product).await;
    let widget = expect_status(created, StatusCode::CREATED).await;
    assert_eq!(widget["name"], "Widget");
    assert_eq!(widget["description"], "A widget");
    assert_eq!(
        widget["price"], "19.99",
        "the price keeps its exact decimal text"
    );
    assert_eq!(widget["quantity"], 5);
    assert!(
        widget["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let id = widget["id"].as_i64().unwrap();

    for path in ["/api/inventory/", "/api/products/"] {
        let listed = stack.get(path, Some(&clerk)).await;
        expect(listed, StatusCode::OK, json!([widget.clone()])).await;
    }
    let detail = stack
        .get(&format!("/api/products/{id}/"), Some(&clerk))
        .await;
    expect(detail, StatusCode::OK, widget.clone()).await;

    let updated = stack
        .send(
            Method::PATCH,
            &format!("/api/products/{id}/"),
            &admin,
            json!({"quantity": 7}),
        )
        .await;
    assert_eq!(expect_status(updated, StatusCode::OK).await["quantity"], 7);
    let replaced = stack
        .send(
            Method::PUT,
            &format!("/api/products/{id}/"),
            &admin,
            json!({"name": "Gadget", "description": "", "price": "5.00", "quantity": 1}),
        )
        .await;
    let gadget = expect_status(replaced, StatusCode::OK).await;
    assert_eq!(
        (&gadget["name"], &gadget["price"]),
        (&json!("Gadget"), &json!("5.00"))
    );
    let incomplete = stack
        .send(
            Method::PUT,
            &format!("/api/products/{id}/"),
            &admin,
            json!({"quantity": 1}),
        )
        .await;
    expect(
        incomplete,
        StatusCode::BAD_REQUEST,
        json!({"name": ["This field is required."], "price": ["This field is required."]}),
    )
    .await;

    let logout = stack.post("/api/logout/", Some(&clerk), json!({})).await;
    expect(
        logout,
        StatusCode::OK,
        json!({"message": "Successfully logged out."}),
    )
    .await;
    let after = stack.get("/api/inventory/", Some(&clerk)).await;
    expect_detail(after, StatusCode::UNAUTHORIZED, "Invalid token.").await;

    let deleted = stack
        .send(
            Method::DELETE,
            &format!("/api/products/{id}/"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = stack
        .get(&format!("/api/products/{id}/"), Some(&admin))
        .await;
    expect_detail(
        gone,
        StatusCode::NOT_FOUND,
        "No Product matches the given query.",
    )
    .await;
}
