//! The gateway's own faults and its services': 500 (a service's database broke), 503 (a service
//! is down) and 504 (a service does not answer). Each answer is the fixed `detail` and nothing
//! else: no SQL, no address or port, no transport error reaches the client, in the body or in a
//! header.

use std::time::Duration;

use reqwest::{Response, StatusCode, header};
use serde_json::json;
use sqlx::{AnyConnection, Connection};

use crate::helpers::{Stack, credentials, expect, spawn_stack};

/// What only the servers should know: fragments of sqlx's, the databases' and tonic's errors.
const INTERNALS: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "sqlx",
    "sql",
    "select",
    "table",
    "relation",
    "database",
    "transport",
    "tcp connect",
    "connection refused",
    "os error",
    "grpc",
    "status",
    "h2",
];

/// Checks the status and that the body is exactly `{"detail": detail}`, and that neither the
/// body nor a header holds any of [`INTERNALS`] or `:PORT` of any of `ports`.
async fn expect_opaque(response: Response, status: StatusCode, detail: &str, ports: &[u16]) {
    assert_eq!(response.status(), status);
    // The date and the request id are the gateway's own (and may hold any digits).
    let headers: Vec<String> = response
        .headers()
        .iter()
        .filter(|(name, _)| ![header::DATE.as_str(), "x-request-id"].contains(&name.as_str()))
        .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    let body = response.text().await.expect("a body");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("a JSON body"),
        json!({ "detail": detail }),
    );
    let everything = format!("{}\n{body}", headers.join("\n")).to_lowercase();
    for internal in INTERNALS {
        assert!(
            !everything.contains(internal),
            "{internal:?} in {everything}"
        );
    }
    for port in ports {
        assert!(
            !everything.contains(&format!(":{port}")),
            "port {port} in {everything}"
        );
    }
}

/// The ports of the stack's two services.
fn service_ports(stack: &Stack) -> Vec<u16> {
    vec![
        stack.auth_url.port_u16().expect("a port"),
        stack.inventory_url.port_u16().expect("a port"),
    ]
}

/// Runs `statement` on the database at `url`, under the service using it.
async fn break_database(url: &str, statement: &'static str) {
    sqlx::any::install_default_drivers();
    let mut connection = AnyConnection::connect(url).await.expect("the database");
    sqlx::raw_sql(statement)
        .execute(&mut connection)
        .await
        .expect("the statement runs");
}

#[tokio::test]
async fn server_error_when_a_database_breaks() {
    let stack = spawn_stack().await;
    let token = stack.clerk("alice").await;
    // A key no service has checked yet. One already checked is served from the caches, whose
    // leases no database fault revokes (nor can any revocation happen without the database).
    let unchecked = stack.clerk("bob").await;
    let ports = service_ports(&stack);
    let [auth_db, inventory_db] = stack.database_urls();
    let server_error = async |response: Response| {
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        expect_opaque(response, status, "A server error occurred.", &ports).await;
    };

    break_database(inventory_db, "DROP TABLE products").await;
    server_error(stack.get("/api/inventory/", Some(&token)).await).await;

    break_database(auth_db, "DROP TABLE credentials").await;
    server_error(stack.get("/api/me/", Some(&unchecked)).await).await;
    server_error(stack.post("/api/login/", None, credentials("alice")).await).await;
}

#[tokio::test]
async fn service_unavailable_when_a_service_is_down() {
    let mut stack = spawn_stack().await;
    let token = stack.clerk("alice").await;
    // Nothing listens on the discard port of loopback here: inventory calls cannot connect.
    let base = stack.extra_gateway("http://127.0.0.1:9", |_| {}).await;
    let response = stack.get_at(&base, "/api/inventory/", Some(&token)).await;
    let mut ports = service_ports(&stack);
    ports.push(9);
    expect_opaque(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "Service temporarily unavailable, try again later.",
        &ports,
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
    let mut stack = spawn_stack().await;
    let token = stack.clerk("alice").await;
    // A listener that accepts connections (the kernel does) but never speaks.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let base = stack
        .extra_gateway(&format!("http://{silent_addr}"), |config| {
            config.upstream_timeout = Duration::from_millis(300);
        })
        .await;
    let response = stack.get_at(&base, "/api/inventory/", Some(&token)).await;
    let mut ports = service_ports(&stack);
    ports.push(silent_addr.port());
    expect_opaque(
        response,
        StatusCode::GATEWAY_TIMEOUT,
        "The service did not answer in time.",
        &ports,
    )
    .await;
    drop(silent);
}
