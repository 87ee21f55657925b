//! 503 when a service is down and 504 when it does not answer, each with its fixed `detail`
//! and nothing else ([`crate::faults::expect_opaque`]): a gateway in front of the fake for auth,
//! and for inventory nothing, or a listener that never speaks.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    fake_upstream::{FakeStack, spawn_fake},
    faults::expect_opaque,
    helpers::expect,
};

/// The fake's port and `also`'s.
fn ports(stack: &FakeStack, also: u16) -> Vec<u16> {
    vec![stack.url.port_u16().expect("a port"), also]
}

#[tokio::test]
async fn service_unavailable_when_a_service_is_down() {
    let mut stack = spawn_fake().await;
    // Nothing listens on the discard port of loopback here: inventory calls cannot connect.
    let base = stack
        .extra_gateway(|config| config.inventory_url = "http://127.0.0.1:9".parse().unwrap())
        .await;
    let response = stack.get_at(&base, "/api/inventory/", Some("key-1")).await;
    expect_opaque(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "Service temporarily unavailable, try again later.",
        &ports(&stack, 9),
    )
    .await;
    expect(
        stack.get_at(&base, "/readyz", None).await,
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"auth": "ok", "inventory": "unavailable"}),
    )
    .await;
}

#[tokio::test]
async fn gateway_timeout_when_a_service_does_not_answer() {
    let mut stack = spawn_fake().await;
    // A listener that accepts connections (the kernel does) but never speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let base = stack
        .extra_gateway(|config| {
            config.inventory_url = format!("http://{silent_addr}").parse().unwrap();
            config.upstream_timeout = Duration::from_millis(300);
        })
        .await;
    let response = stack.get_at(&base, "/api/inventory/", Some("key-1")).await;
    expect_opaque(
        response,
        StatusCode::GATEWAY_TIMEOUT,
        "The service did not answer in time.",
        &ports(&stack, silent_addr.port()),
    )
    .await;
    drop(silent);
}
