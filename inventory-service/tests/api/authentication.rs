//! The auth layer: what happens without credentials, with bad ones, and while auth is down.

use proto::{
    inventory::v1::{GetProductRequest, ListProductsRequest},
    reasons,
};
use std::time::{Duration, Instant};

use service_kit::testing::TestDatabase;
use tokio::net::TcpListener;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::{
    assert_reason, spawn_app, start_inventory, url_of, wait_for_health, widget, with_authorization,
    with_token,
};

service_kit::on_both_backends!(
    calls_without_credentials_are_unauthenticated,
    malformed_credentials_are_unauthenticated,
    auth_verdicts_pass_through_unchanged,
    auth_outage_is_unavailable_until_auth_returns,
    a_silent_auth_is_unavailable_after_the_deadline,
);

async fn calls_without_credentials_are_unauthenticated(db: TestDatabase) {
    let app = spawn_app(db).await;
    let mut inventory = app.inventory();
    let status = inventory
        .list_products(Request::new(ListProductsRequest::default()))
        .await
        .unwrap_err();
    assert_reason(&status, Code::Unauthenticated, reasons::CREDENTIALS_MISSING);
    // As DRF: a scheme it does not know is no credential at all.
    let status = inventory
        .list_products(with_authorization(
            ListProductsRequest::default(),
            "Basic dXNlcjpwYXNz",
        ))
        .await
        .unwrap_err();
    assert_reason(&status, Code::Unauthenticated, reasons::CREDENTIALS_MISSING);
}

async fn malformed_credentials_are_unauthenticated(db: TestDatabase) {
    let app = spawn_app(db).await;
    let mut inventory = app.inventory();
    for value in ["Token", "Token two keys"] {
        let status = inventory
            .list_products(with_authorization(ListProductsRequest::default(), value))
            .await
            .unwrap_err();
        assert_reason(&status, Code::Unauthenticated, reasons::TOKEN_INVALID);
    }
}

async fn auth_verdicts_pass_through_unchanged(db: TestDatabase) {
    let app = spawn_app(db).await;
    let mut inventory = app.inventory();
    let unknown = "0".repeat(40);
    for value in [format!("Token {unknown}"), format!("Session {unknown}")] {
        let status = inventory
            .list_products(with_authorization(ListProductsRequest::default(), &value))
            .await
            .unwrap_err();
        assert_reason(&status, Code::Unauthenticated, reasons::TOKEN_INVALID);
    }
    // Bearer is the same credential as Token.
    inventory
        .list_products(with_authorization(
            ListProductsRequest::default(),
            &format!("bearer {}", app.admin_token),
        ))
        .await
        .expect("bearer works like Token");
}

async fn auth_outage_is_unavailable_until_auth_returns(db: TestDatabase) {
    let mut app = spawn_app(db).await;
    let product = app.create_product(widget(1)).await;
    let token = app.admin_token.clone();
    let get = || with_token(GetProductRequest { id: product.id }, &token);
    let mut inventory = app.inventory();
    app.wait_for_inventory_health(ServingStatus::Serving).await;
    app.until_cache_trusted().await;

    app.stop_auth().await;
    app.wait_for_inventory_health(ServingStatus::NotServing)
        .await;
    // A cached verdict is served only while the cache's lease holds (see `cache`); after that
    // every call needs auth.
    app.until_cache_untrusted().await;
    let status = inventory.get_product(get()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // Still down: still refused, never served unchecked.
    let status = inventory.get_product(get()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    app.restart_auth().await;
    let fetched = inventory.get_product(get()).await.expect("served again");
    assert_eq!(fetched.into_inner(), product);
    app.wait_for_inventory_health(ServingStatus::Serving).await;
}

async fn a_silent_auth_is_unavailable_after_the_deadline(db: TestDatabase) {
    // Accepts connections and never says a word: a hung auth service.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let silent_addr = silent.local_addr().expect("an address");
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            held.push(connection);
        }
    });
    let mut config = inventory_service::Config::for_tests(db.url(), url_of(silent_addr));
    config.auth_timeout = Duration::from_millis(300);
    // Starts although auth does not answer (the channel connects lazily).
    let inventory = start_inventory(config).await;

    let started = Instant::now();
    let status = inventory
        .client()
        .list_products(with_token(ListProductsRequest::default(), &"0".repeat(40)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the deadline was not kept"
    );
    wait_for_health(&inventory.channel, ServingStatus::NotServing).await;
    holder.abort();
}
