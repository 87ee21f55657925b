//! `Idempotency-Key` on the product and user writes: a repeat with the same key and body gets the first
//! answer and applies nothing; another body is a 422; a malformed key is a 400; keys are per
//! user; a write without a key applies each time.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Stack, expect_detail, expect_status, spawn_stack};

const REUSED: &str = "This Idempotency-Key was already used with a different request.";

impl Stack {
    /// `method path` with a token, a JSON body and `Idempotency-Key: key`.
    async fn send_keyed(
        &self,
        method: Method,
        path: &str,
        token: &str,
        key: &str,
        body: Value,
    ) -> Response {
        self.request(method, path)
            .header("Authorization", format!("Token {token}"))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .expect("the gateway answers")
    }

    async fn quantity(&self, token: &str, id: i64) -> i64 {
        let response = self.get(&format!("/api/products/{id}/"), Some(token)).await;
        expect_status(response, StatusCode::OK).await["quantity"]
            .as_i64()
            .expect("a quantity")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_write_with_a_key_applies_once() {
    let stack = spawn_stack().await;
    let admin = stack.admin().await;
    let id = stack.product(&admin, "Widget", 10).await;
    let path = format!("/api/products/{id}/adjust-stock/");

    let mut answers = Vec::new();
    for (key, replayed) in [("add-5", None), ("\"add-5\"", Some("true"))] {
        let response = stack
            .send_keyed(Method::POST, &path, &admin, key, json!({ "delta": 5 }))
            .await;
        let marked = response.headers().get("Idempotent-Replayed");
        assert_eq!(marked.map(|value| value.to_str().unwrap()), replayed);
        answers.push(expect_status(response, StatusCode::OK).await);
    }
    assert_eq!(answers[0]["quantity"], 15);
    assert_eq!(
        answers[1], answers[0],
        "the repeat (the same key, quoted as the draft writes it) gets the first answer"
    );
    assert_eq!(stack.quantity(&admin, id).await, 15, "applied once");

    let create = || {
        stack.send_keyed(
            Method::POST,
            "/api/products/",
            &admin,
            "create-gadget",
            json!({ "name": "Gadget", "price": "1.00" }),
        )
    };
    let first = expect_status(create().await, StatusCode::CREATED).await;
    let again = expect_status(create().await, StatusCode::CREATED).await;
    assert_eq!(again, first, "one product, the same id");
    let listed = expect_status(
        stack.get("/api/products/", Some(&admin)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));

    let product = format!("/api/products/{id}/");
    let delete = || stack.send_keyed(Method::DELETE, &product, &admin, "rm", json!({}));
    assert_eq!(delete().await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        delete().await.status(),
        StatusCode::NO_CONTENT,
        "answered as the first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_with_another_body_is_a_422() {
    let stack = spawn_stack().await;
    let admin = stack.admin().await;
    let id = stack.product(&admin, "Widget", 10).await;
    let path = format!("/api/products/{id}/");
    let response = stack
        .send_keyed(Method::PATCH, &path, &admin, "k", json!({ "quantity": 3 }))
        .await;
    expect_status(response, StatusCode::OK).await;
    let response = stack
        .send_keyed(Method::PATCH, &path, &admin, "k", json!({ "quantity": 4 }))
        .await;
    expect_detail(response, StatusCode::UNPROCESSABLE_ENTITY, REUSED).await;
    assert_eq!(stack.quantity(&admin, id).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_key_is_a_400() {
    let stack = spawn_stack().await;
    let admin = stack.admin().await;
    let id = stack.product(&admin, "Widget", 10).await;
    let path = format!("/api/products/{id}/adjust-stock/");
    for (key, detail) in [
        (
            "k".repeat(256),
            "Idempotency-Key must be at most 255 characters long.",
        ),
        (
            "\"unclosed".to_owned(),
            "Idempotency-Key must be printable ASCII characters only.",
        ),
        ("\"\"".to_owned(), "Idempotency-Key must not be empty."),
    ] {
        let response = stack
            .send_keyed(Method::POST, &path, &admin, &key, json!({ "delta": 1 }))
            .await;
        expect_detail(response, StatusCode::BAD_REQUEST, detail).await;
    }
    let twice = stack
        .request(Method::POST, &path)
        .header("Authorization", format!("Token {admin}"))
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .json(&json!({ "delta": 1 }))
        .send()
        .await
        .expect("the gateway answers");
    expect_detail(
        twice,
        StatusCode::BAD_REQUEST,
        "Idempotency-Key must be sent once.",
    )
    .await;
    assert_eq!(stack.quantity(&admin, id).await, 10, "nothing applied");

    // A read changes nothing: its key is not even read.
    let read = stack
        .request(Method::GET, &format!("/api/products/{id}/"))
        .header("Authorization", format!("Token {admin}"))
        .header("Idempotency-Key", "k".repeat(256))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(read.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_per_user_and_keyless_writes_apply_each_time() {
    let stack = spawn_stack().await;
    let admin = stack.admin().await;
    let manager = stack.manager(&admin, "manny").await;
    let id = stack.product(&admin, "Widget", 0).await;
    let path = format!("/api/products/{id}/adjust-stock/");
    for (token, delta) in [(&admin, 1), (&manager, 2)] {
        let response = stack
            .send_keyed(
                Method::POST,
                &path,
                token,
                "shared",
                json!({ "delta": delta }),
            )
            .await;
        expect_status(response, StatusCode::OK).await;
    }
    assert_eq!(
        stack.quantity(&admin, id).await,
        3,
        "two users' keys never collide"
    );

    // The gateway keys each keyless write itself, with a key of that request alone.
    for _ in 0..2 {
        let response = stack
            .send(Method::POST, &path, &admin, json!({ "delta": 1 }))
            .await;
        expect_status(response, StatusCode::OK).await;
    }
    assert_eq!(stack.quantity(&admin, id).await, 5);
}

/// The admin's user writes take keys too (auth stores them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_user_creation_makes_one_user() {
    let stack = spawn_stack().await;
    let admin = stack.admin().await;
    let body = || json!({ "username": "clara", "password": crate::helpers::PASSWORD });
    let create = || stack.send_keyed(Method::POST, "/users/", &admin, "new-clara", body());
    let first = create().await;
    assert!(first.headers().get("Idempotent-Replayed").is_none());
    let first = expect_status(first, StatusCode::CREATED).await;
    let again = create().await;
    assert_eq!(again.headers()["Idempotent-Replayed"], "true");
    assert_eq!(expect_status(again, StatusCode::CREATED).await, first);
    let other = stack
        .send_keyed(
            Method::POST,
            "/users/",
            &admin,
            "new-clara",
            json!({ "username": "carl", "password": crate::helpers::PASSWORD }),
        )
        .await;
    expect_detail(other, StatusCode::UNPROCESSABLE_ENTITY, REUSED).await;
}

/// `/api/schema/` documents the header, and the 422, on exactly the writes that take it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_documents_the_header_on_the_keyed_writes() {
    let stack = spawn_stack().await;
    let schema = expect_status(stack.get("/api/schema/", None).await, StatusCode::OK).await;
    let mut keyed = Vec::new();
    for (path, methods) in schema["paths"].as_object().expect("paths") {
        for (method, operation) in methods.as_object().expect("methods") {
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if parameters
                .iter()
                .any(|parameter| parameter["name"] == "Idempotency-Key")
            {
                assert!(operation["responses"]["422"].is_object(), "{method} {path}");
                keyed.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    keyed.sort();
    assert_eq!(
        keyed,
        [
            "DELETE /api/products/{id}/",
            "DELETE /users/{id}/",
            "PATCH /api/products/{id}/",
            "PATCH /users/{id}/",
            "POST /api/products/",
            "POST /api/products/{id}/adjust-stock/",
            "POST /users/",
            "PUT /api/products/{id}/",
            "PUT /users/{id}/",
        ]
    );
}
