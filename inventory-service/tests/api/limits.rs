//! The `GRPC_*` limits of service-kit's server, as a caller meets them: a message over the size
//! limit is refused at once, and a call past the deadline ends instead of hanging.

use std::time::Duration;

use proto::inventory::v1::{CreateProductRequest, ListProductsRequest};
use service_kit::testing::TestDatabase;
use tonic::Code;

use crate::helpers::{spawn_app_with, start_inventory, widget, with_token};

service_kit::on_both_backends!(requests_over_the_message_limit_are_out_of_range);

async fn requests_over_the_message_limit_are_out_of_range(db: TestDatabase) {
    let app = spawn_app_with(db, |config| config.grpc.max_request_bytes = 16 * 1024).await;
    let mut inventory = app.inventory();
    let big = CreateProductRequest {
        description: Some("x".repeat(32 * 1024)),
        ..widget(1)
    };
    let status = inventory
        .create_product(with_token(big, &app.admin_token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    // Under the limit, the same call works.
    let small = CreateProductRequest {
        description: Some("x".repeat(8 * 1024)),
        ..widget(1)
    };
    inventory
        .create_product(with_token(small, &app.admin_token))
        .await
        .expect("a message under the limit is served");
}

/// Auth accepts the connection and never answers, and the credential check would wait a
/// minute: the server's own deadline ends the call long before.
#[tokio::test]
async fn a_call_past_the_request_timeout_is_cancelled() {
    let db = TestDatabase::sqlite();
    let silent_auth = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let auth_url = format!("http://{}", silent_auth.local_addr().unwrap());
    let mut config = inventory_service::Config::for_tests(db.url(), auth_url.parse().unwrap());
    config.auth_timeout = Duration::from_secs(60);
    config.grpc.request_timeout = Duration::from_millis(300);
    let inventory = start_inventory(config).await;
    let mut client = inventory.client();
    let call = client.list_products(with_token(ListProductsRequest::default(), "some-key"));
    let status = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the server ends the call")
        .unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    drop(silent_auth);
}
