//! What operators see of a request across the hops. Metrics: the gateway's `/metrics` holds,
//! beside its HTTP series, the gRPC calls it made (by service, method and code) and the
//! replicas in its balancers; with the services in the same process, their caches and pools.

use reqwest::StatusCode;
use service_kit::testing::scrape::{promtool_accepts, value};

use crate::helpers::{expect_status, spawn_stack};

#[tokio::test]
async fn the_gateway_exposes_its_calls_its_balancers_and_its_verdict_cache() {
    let stack = spawn_stack().await;
    let token = stack.admin().await;
    for _ in 0..2 {
        expect_status(
            stack.get("/api/inventory/", Some(&token)).await,
            StatusCode::OK,
        )
        .await;
    }
    let text = stack.get("/metrics", None).await.text().await.unwrap();
    let listed = [
        r#"grpc_service="inventory.v1.InventoryService""#,
        r#"grpc_method="ListProducts""#,
        r#"grpc_code="OK""#,
    ];
    assert!(
        value(&text, "grpc_client_handled_total", &listed) >= Some(2.0),
        "{text}"
    );
    let timed = [listed[0], listed[1], r#"le="+Inf""#];
    assert!(value(&text, "grpc_client_handling_seconds_bucket", &timed) >= Some(2.0));
    let validated = [
        r#"grpc_service="auth.v1.AuthService""#,
        r#"grpc_method="ValidateToken""#,
        r#"grpc_code="OK""#,
    ];
    assert!(
        value(&text, "grpc_client_handled_total", &validated) >= Some(1.0),
        "{text}"
    );
    for service in ["auth.v1.AuthService", "inventory.v1.InventoryService"] {
        let replicas = format!(r#"grpc_service="{service}""#);
        let counted = value(&text, "grpc_client_replicas", &[&replicas]);
        assert!(counted >= Some(1.0), "{service}: {text}");
    }
    // The stack runs in this one process, as the `stack` binary runs it: the exposition
    // holds inventory's verdict cache and pool too.
    let holder = r#"holder="inventory""#;
    let lookups = ["hit", "miss"].map(|result| {
        let result = format!(r#"result="{result}""#);
        let counted = value(&text, "verdict_cache_lookups_total", &[holder, &result]);
        counted.unwrap_or(0.0)
    });
    assert!(lookups.iter().sum::<f64>() >= 2.0, "{text}");
    let pool = [r#"pool="inventory""#, r#"state="idle""#];
    assert!(
        value(&text, "db_pool_connections", &pool).is_some(),
        "{text}"
    );
    promtool_accepts(&text);
}
