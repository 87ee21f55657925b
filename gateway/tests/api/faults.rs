//! The services' faults on the full stack: 500 when a service's database breaks, the fixed
//! `detail` and nothing else (no SQL, no address or port, no transport error reaches the
//! client, in the body or in a header: [`expect_opaque`], which `routes::faults` uses for the
//! 503 and 504 of a service down or silent); and `/readyz` of an inventory that cannot reach
//! auth.

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
pub async fn expect_opaque(response: Response, status: StatusCode, detail: &str, ports: &[u16]) {
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

/// `/readyz` asks each service's health for that service by name: an inventory that cannot
/// reach auth (so cannot check any caller) reports itself NOT_SERVING while its process, the
/// whole-server status "", stays SERVING.
#[tokio::test]
async fn readiness_asks_each_service_by_name() {
    let mut stack = spawn_stack().await;
    // Nothing listens on the discard port of loopback: this inventory never reaches auth.
    let stranded = stack.extra_inventory("http://127.0.0.1:9").await;
    let base = stack.extra_gateway(&stranded, |_| {}).await;
    expect(
        stack.get_at(&base, "/readyz", None).await,
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"auth": "ok", "inventory": "unavailable"}),
    )
    .await;
}
