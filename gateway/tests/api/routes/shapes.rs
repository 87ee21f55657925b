//! The bodies the routes answer with, field by field, from what the fake answers; and what the
//! routes ask: the caller's token on every call, a page's limit and offset, a whole list read
//! batch by batch.

use proto::auth::v1::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    fake_upstream::{
        FakeStack, GET_CURRENT_USER, LIST_PRODUCTS, product, spawn_fake, timestamp, user,
    },
    helpers::{expect, expect_status},
};

#[tokio::test]
async fn a_product_is_drfs_serializer_fields_in_order() {
    let stack = spawn_fake().await;
    stack.fake.set_products(vec![product(3, "Bolt")]);
    let response = stack.get("/api/products/3/", Some("key-1")).await;
    let text = response.text().await.unwrap();
    // In the serializer's order, `id` first: compared as text.
    assert_eq!(
        text,
        r#"{"id":3,"name":"Bolt","description":"The Bolt","price":"9.99","quantity":1,"created_at":"2023-11-14T22:13:20Z","updated_at":"2023-11-14T22:15:00Z"}"#
    );
}

#[tokio::test]
async fn me_is_the_whole_user_with_its_role_by_name() {
    let stack = spawn_fake().await;
    let mut alice = user(5, "alice", Role::Manager);
    alice.first_name = "Alice".to_owned();
    alice.last_login = Some(timestamp(1_700_000_100));
    stack.fake.add_user("alice-key", alice);
    let mut bob = user(6, "bob", Role::Clerk);
    bob.username = None;
    stack.fake.add_user("bob-key", bob);
    expect(
        stack.get("/api/me/", Some("alice-key")).await,
        StatusCode::OK,
        json!({
            "id": 5, "username": "alice", "email": "alice@example.com", "first_name": "Alice",
            "last_name": "", "role": "MANAGER", "is_staff": false, "is_superuser": false,
            "is_active": true, "date_joined": "2023-11-14T22:13:20Z",
            "last_login": "2023-11-14T22:15:00Z",
        }),
    )
    .await;
    let bob = expect_status(stack.get("/api/me/", Some("bob-key")).await, StatusCode::OK).await;
    assert_eq!(bob["username"], json!(null));
    assert_eq!(bob["last_login"], json!(null));
    assert_eq!(bob["role"], "CLERK");
    let presented: Vec<_> = stack.fake.requests(GET_CURRENT_USER);
    let presented: Vec<_> = presented
        .iter()
        .map(|c| c.header("authorization"))
        .collect();
    assert_eq!(presented, [Some("Token alice-key"), Some("Token bob-key")]);
}

/// The limit, offset and `skip_total_count` of each `ListProducts` call, in order.
fn pages_asked(stack: &FakeStack) -> Vec<(Option<u64>, u64, bool)> {
    let calls = stack.fake.requests(LIST_PRODUCTS).into_iter();
    let asked = calls.map(|c| {
        (
            c.message.limit,
            c.message.offset,
            c.message.skip_total_count,
        )
    });
    asked.collect()
}

#[tokio::test]
async fn lists_page_with_limit_and_offset() {
    let stack = spawn_fake().await;
    stack
        .fake
        .set_products(vec![product(1, "a"), product(2, "b"), product(3, "c")]);
    let page = expect_status(
        stack.get("/api/products/?limit=2", Some("key-1")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["count"], 3);
    assert_eq!(page["previous"], json!(null));
    assert!(
        page["next"]
            .as_str()
            .unwrap()
            .ends_with("/api/products/?limit=2&offset=2")
    );
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    let last = expect_status(
        stack
            .get("/api/products?limit=2&offset=2", Some("key-1"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(last["next"], json!(null));
    assert!(
        last["previous"]
            .as_str()
            .unwrap()
            .ends_with("/api/products/?limit=2")
    );
    assert_eq!(last["results"][0]["name"], "c");
    // Each page was one call for that page, counted, on behalf of the caller.
    assert_eq!(
        pages_asked(&stack),
        [(Some(2), 0, false), (Some(2), 2, false)]
    );
    let calls = stack.fake.requests(LIST_PRODUCTS);
    assert!(
        calls
            .iter()
            .all(|c| c.header("authorization") == Some("Token key-1"))
    );
}

/// Without `?limit=` the list is every product, uncounted, read a thousand (inventory's most
/// per call) at a time from where the last call ended, until one says no more follow.
#[tokio::test]
async fn a_list_longer_than_one_reply_is_read_batch_by_batch() {
    let stack = spawn_fake().await;
    let products = (1..=2_500).map(|id| product(id, &format!("p{id}")));
    stack.fake.set_products(products.collect());
    let list = expect_status(
        stack.get("/api/inventory/", Some("key-1")).await,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<_> = list
        .as_array()
        .expect("a plain list")
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (1..=2_500).collect::<Vec<_>>());
    assert_eq!(
        pages_asked(&stack),
        [
            (Some(1_000), 0, true),
            (Some(1_000), 1_000, true),
            (Some(1_000), 2_000, true)
        ]
    );
}
