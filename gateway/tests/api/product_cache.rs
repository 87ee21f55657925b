//! Inventory's product cache seen through the gateway: 100 rounds of warming the copy with a
//! list, a product write (create, replace, patch, adjust stock, delete, in turn) and at once a
//! list and a read of the product: each shows the write. On PostgreSQL the writes go through a
//! second gateway to a second inventory replica, while the reads' replica holds the copy. The
//! warming lists also teach the reading gateway the list's reply, whose JSON it remembers
//! (`shapes::ReplyMemo`): the list after the write must not be that JSON.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Stack, expect_status, spawn_stack};

const ROUNDS: usize = 100;

/// Lists until the inventory's copy of the table is there and trusted.
async fn warm(stack: &Stack, token: &str) {
    for _ in 0..500 {
        expect_status(
            stack.get("/api/inventory/", Some(token)).await,
            StatusCode::OK,
        )
        .await;
        if stack.inventory_products.is_trusted() && stack.inventory_products.cached().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the product cache never held the table");
}

/// A request on the gateway at `base` (the stack's, or the writers' second one).
async fn send(
    stack: &Stack,
    base: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = stack
        .client
        .request(method, format!("{base}{path}"))
        .header("authorization", format!("Token {token}"));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("the gateway answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_product_write_is_read_back_at_once_through_the_gateway() {
    let mut stack = spawn_stack().await;
    let admin = stack.admin().await;
    let writes_to = if stack.database_urls()[1].starts_with("postgres") {
        let replica = stack.extra_inventory_replica().await;
        stack.extra_gateway(&replica, |_| {}).await
    } else {
        stack.base.clone()
    };
    let mut id = stack.product(&admin, "Widget", 5).await;
    for round in 0..ROUNDS {
        warm(&stack, &admin).await;
        let path = format!("/api/products/{id}/");
        let (method, target, body, status) = match round % 5 {
            0 => (
                Method::POST,
                "/api/products/".to_owned(),
                Some(json!({"name": format!("Made in round {round}"), "price": "1.00"})),
                StatusCode::CREATED,
            ),
            1 => (
                Method::PUT,
                path,
                Some(json!({"name": format!("Replaced in round {round}"), "price": "2.50"})),
                StatusCode::OK,
            ),
            2 => (
                Method::PATCH,
                path,
                Some(json!({"description": format!("Patched in round {round}")})),
                StatusCode::OK,
            ),
            3 => (
                Method::POST,
                format!("{path}adjust-stock/"),
                Some(json!({"delta": 2})),
                StatusCode::OK,
            ),
            _ => (Method::DELETE, path, None, StatusCode::NO_CONTENT),
        };
        let deleted = method == Method::DELETE;
        let response = send(&stack, &writes_to, method, &target, &admin, body).await;
        let written = if deleted {
            assert_eq!(response.status(), StatusCode::NO_CONTENT, "round {round}");
            None
        } else {
            Some(expect_status(response, status).await)
        };
        if let Some(product) = &written {
            id = product["id"].as_i64().expect("an id");
        }

        let listed = expect_status(
            stack.get("/api/inventory/", Some(&admin)).await,
            StatusCode::OK,
        )
        .await;
        let found = listed
            .as_array()
            .expect("a list")
            .iter()
            .find(|product| product["id"].as_i64() == Some(id));
        assert_eq!(found, written.as_ref(), "round {round}: the list");
        let read = send(
            &stack,
            &stack.base,
            Method::GET,
            &format!("/api/products/{id}/"),
            &admin,
            None,
        )
        .await;
        match &written {
            Some(product) => assert_eq!(
                &expect_status(read, StatusCode::OK).await,
                product,
                "round {round}"
            ),
            None => assert_eq!(
                read.status(),
                StatusCode::NOT_FOUND,
                "round {round}: the read"
            ),
        }
        if deleted {
            id = stack.product(&admin, "Widget", 5).await;
        }
    }
}
