//! Scenario 1: an authenticated `GET /api/inventory/` of 20 products through the gateway (a
//! ValidateToken call to auth, then ListProducts on inventory, which validates again) against
//! an axum handler answering the same document, over HTTP/1.1 keep-alive connections as
//! `wrk -t2 -c32` makes them.

use std::{net::SocketAddr, time::Duration};

use crate::{
    baseline::Baselines,
    load::{self, HttpGet},
    report::{Report, ms, ratio},
    stack::INVENTORY_PATH,
    stack::Stack,
};

const CONNECTIONS: usize = 32;
const P99_TARGET: Duration = Duration::from_millis(5);

pub async fn run(stack: &Stack, baselines: &Baselines, report: &mut Report) {
    let authorization = format!("Token {}", stack.admin_key);
    let connections = |addr: SocketAddr, body_len: usize| -> Vec<HttpGet> {
        (0..CONNECTIONS)
            .map(|_| HttpGet::new(addr, INVENTORY_PATH, Some(&authorization), body_len))
            .collect()
    };
    let gateway = connections(
        stack.gateway.addr(),
        body_len(stack.gateway.addr(), &authorization).await,
    );
    let axum = connections(
        baselines.http,
        body_len(baselines.http, &authorization).await,
    );
    for service in stack.services() {
        service.reset_peak();
    }
    let [gateway, axum] = load::in_turns([gateway, axum]).await;

    report.heading(&format!(
        "1. GET {INVENTORY_PATH}, 20 products, HTTP/1.1 keep-alive, {CONNECTIONS} connections"
    ));
    report.table(&[
        ("gateway (auth + inventory over gRPC)", gateway),
        ("axum baseline (the same JSON, fixed)", axum),
    ]);
    let share = ratio(gateway.per_second, axum.per_second);
    report.check(
        "1 gateway",
        ">= 20% of the axum baseline",
        format!("{:.1}%", 100.0 * share),
        share >= 0.20,
    );
    report.check(
        "1 gateway",
        "p99 <= 5 ms",
        ms(gateway.p99),
        gateway.p99 <= P99_TARGET,
    );
    report.memory(&stack.services());
}

/// The length of the answer every load request must get back in full.
async fn body_len(addr: SocketAddr, authorization: &str) -> usize {
    let (status, body) = load::get(addr, INVENTORY_PATH, Some(authorization))
        .await
        .unwrap_or_else(|e| panic!("GET {INVENTORY_PATH} on {addr}: {e}"));
    assert!(
        status.is_success(),
        "GET {INVENTORY_PATH} on {addr}: {status}"
    );
    body.len()
}
