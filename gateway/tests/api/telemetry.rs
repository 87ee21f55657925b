//! What operators see of a request across the hops. Metrics: the gateway's `/metrics` holds,
//! beside its HTTP series, the gRPC calls it made (by service, method and code) and the
//! replicas in its balancers; with the services in the same process, their caches and pools.
//! Traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the three services (each a process) export
//! their spans to a real OTLP receiver, one list with a cold verdict cache is one trace across
//! all three with every span under its caller's, and a client's `traceparent` is continued.

use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use reqwest::StatusCode;
use service_kit::testing::scrape::{promtool_accepts, value};

use crate::{
    helpers::{credentials, expect_status, spawn_stack},
    otlp::{Received, Receiver},
    processes::Replicas,
};

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

/// The client's trace, which the gateway must continue: W3C's example ids.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// The span `service` exported under `name`, of `kind`, in the client's trace, if received.
fn find<'a>(spans: &'a [Received], service: &str, name: &str, kind: SpanKind) -> Option<&'a Span> {
    let trace_id = hex::decode(TRACE_ID).unwrap();
    spans
        .iter()
        .filter(|(sent_by, span)| sent_by == service && span.trace_id == trace_id)
        .map(|(_, span)| span)
        .find(|span| span.name == name && span.kind == kind as i32)
}

/// Whether `span`'s parents, among the spans `received`, lead to `ancestor`.
fn descends(received: &[Received], span: &Span, ancestor: &Span) -> bool {
    let mut parent = span.parent_span_id.clone();
    for _ in 0..received.len() {
        if parent == ancestor.span_id {
            return true;
        }
        let Some((_, next)) = received.iter().find(|(_, candidate)| {
            candidate.span_id == parent && candidate.trace_id == span.trace_id
        }) else {
            return false;
        };
        parent = next.parent_span_id.clone();
    }
    false
}

#[tokio::test]
async fn one_list_is_one_trace_across_the_three_services() {
    let receiver = Receiver::start().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];
    let Some(replicas) = Replicas::start_with(1, &env, &env).await else {
        return;
    };
    // A token inventory has not seen: its verdict cache misses, so it asks auth.
    let login = replicas
        .post("/api/login/", None, credentials("admin"))
        .await;
    let token = login["token"].as_str().unwrap();
    let listed = replicas
        .client
        .get(replicas.url("/api/inventory/"))
        .header("Authorization", format!("Token {token}"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);

    const LIST: &str = "inventory.v1.InventoryService/ListProducts";
    const VALIDATE: &str = "auth.v1.AuthService/ValidateToken";
    let chain = [
        ("gateway", "GET /api/inventory/", SpanKind::Server),
        ("gateway", LIST, SpanKind::Client),
        ("inventory-service", LIST, SpanKind::Server),
        ("inventory-service", VALIDATE, SpanKind::Client),
        ("auth-service", VALIDATE, SpanKind::Server),
    ];
    let spans = receiver
        .until("the list's spans from all three services", |spans| {
            chain
                .iter()
                .all(|(service, name, kind)| find(spans, service, name, *kind).is_some())
        })
        .await;
    let received = spans;
    let spans: Vec<&Span> = chain
        .iter()
        .map(|(service, name, kind)| find(&received, service, name, *kind).unwrap())
        .collect();
    // The trace as the receiver got it: `cargo test -p gateway --test api one_list -- --nocapture`.
    for ((service, _, kind), span) in chain.iter().zip(&spans) {
        let parent = hex::encode(&span.parent_span_id);
        let id = hex::encode(&span.span_id);
        println!(
            "{service:18} {kind:?} {:42} span {id} parent {parent}",
            span.name
        );
    }
    // The gateway continues the client's span; every other span is under its caller's (its
    // child, or a span of its own in between where the log filter enables finer spans).
    assert_eq!(hex::encode(&spans[0].parent_span_id), PARENT_ID);
    for (child, parent) in spans.iter().skip(1).zip(&spans) {
        assert!(
            descends(&received, child, parent),
            "{} is not under {}",
            child.name,
            parent.name
        );
    }
    // The request id is on the spans, as it is on the log lines.
    let request_id = spans[0]
        .attributes
        .iter()
        .find(|attribute| attribute.key == "request_id");
    assert!(request_id.is_some(), "{:?}", spans[0].attributes);
}
