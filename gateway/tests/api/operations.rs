//! The routes for operators and the conventions of every response: schema, health, readiness,
//! metrics, request ids, trailing slashes, form bodies and paging.

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::helpers::{PASSWORD, expect, expect_status, raw_exchange, spawn_stack};

#[tokio::test]
async fn schema_documents_every_route_and_every_route_is_served() {
    let stack = spawn_stack().await;
    let schema = expect_status(stack.get("/api/schema/", None).await, StatusCode::OK).await;
    assert_eq!(schema["openapi"], "3.0.3");
    let paths = schema["paths"].as_object().unwrap();
    for expected in [
        "/api/login/",
        "/login/",
        "/api/products/{id}/",
        "/users/{id}/",
        "/api/signup/",
    ] {
        assert!(paths.contains_key(expected), "{expected} is documented");
    }
    // Every documented operation is routed: none answers the unknown-route 404.
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = stack
                .request(method.clone(), &path.replace("{id}", "1"))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && body != r#"{"detail":"Not found."}"#,
                "{method} {path} is not routed: {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let stack = spawn_stack().await;
    expect(
        stack.get("/healthz", None).await,
        StatusCode::OK,
        json!({"status": "ok"}),
    )
    .await;
    let addr = stack.base.trim_start_matches("http://").parse().unwrap();
    gateway::server::probe_health(addr, "localhost")
        .await
        .expect("the container probe passes");
    expect(
        stack.get("/readyz", None).await,
        StatusCode::OK,
        json!({"auth": "ok", "inventory": "ok"}),
    )
    .await;
    stack.get("/api/inventory/", None).await;
    let metrics = stack.get("/metrics", None).await;
    assert!(
        metrics.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/api/inventory/",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/inventory/\",status=\"401\",le=\"+Inf\"} 1"));
}

#[tokio::test]
async fn request_ids_are_returned_and_kept() {
    let stack = spawn_stack().await;
    let generated = stack.get("/api/nothing/", None).await;
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 32);
    let kept = stack
        .request(Method::GET, "/api/inventory/")
        .header("X-Request-Id", "client-chosen-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "client-chosen-id-1");
    // Only 1 to 64 of `[A-Za-z0-9._-]` pass through; anything else is replaced by a new id.
    for unusable in [
        "a".repeat(65),
        "id\"with=quotes".to_owned(),
        "a/b".to_owned(),
    ] {
        let replaced = stack
            .request(Method::GET, "/api/inventory/")
            .header("X-Request-Id", &unusable)
            .send()
            .await
            .unwrap();
        let id = replaced.headers()["x-request-id"].to_str().unwrap();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{unusable:?} -> {id:?}"
        );
    }
}

#[tokio::test]
async fn paths_work_without_the_trailing_slash_and_forms_are_accepted() {
    let stack = spawn_stack().await;
    stack.clerk("alice").await;
    let response = stack
        .request(Method::POST, "/api/login")
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let body = expect_status(response, StatusCode::OK).await;
    assert!(body["token"].is_string());
}

#[tokio::test]
async fn lists_page_with_limit_and_offset() {
    let stack = spawn_stack().await;
    let admin = stack.admin().await;
    for name in ["a", "b", "c"] {
        stack.product(&admin, name, 1).await;
    }
    let page = expect_status(
        stack.get("/api/products/?limit=2", Some(&admin)).await,
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
            .get("/api/products?limit=2&offset=2", Some(&admin))
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
}

/// Any token is a method to HTTP; `/metrics` keeps one series per label, so a client must not
/// be able to add labels: unknown methods count as `other`, unknown paths as `unmatched`.
#[tokio::test]
async fn metrics_labels_stay_bounded_whatever_the_client_sends() {
    let stack = spawn_stack().await;
    for (method, path) in [
        ("X1", "/api/products/"),
        ("BREW", "/api/products/"),
        ("PROPFIND", "/no/such/route/x1/"),
        ("GET", "/no/such/route/x2/"),
    ] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        stack.request(method, path).send().await.unwrap();
    }
    let text = stack.get("/metrics", None).await.text().await.unwrap();
    for leaked in ["X1", "BREW", "PROPFIND", "x1", "x2"] {
        assert!(!text.contains(leaked), "{leaked} became a label:\n{text}");
    }
    assert!(
        text.contains(
            r#"http_requests_total{method="other",route="/api/products/",status="405"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="other",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "{text}"
    );
}

/// `ALLOWED_HOSTS`: another `Host` gets Django's plain 400 on every route, and paging links
/// carry only an allowed host.
#[tokio::test]
async fn hosts_outside_allowed_hosts_get_djangos_400_and_never_reach_a_link() {
    let mut stack = spawn_stack().await;
    let admin = stack.admin().await;
    stack.product(&admin, "a", 1).await;
    stack.product(&admin, "b", 1).await;
    let page = |base: String, host: &'static str| {
        let admin = admin.clone();
        async move {
            let request = format!(
                "GET /api/products/?limit=1 HTTP/1.1\r\nHost: {host}\r\n\
                 Authorization: Token {admin}\r\nConnection: close\r\n\r\n"
            );
            raw_exchange(&base, request.as_bytes()).await
        }
    };
    for refused in [
        "evil.example",
        "evil.example:8000",
        "localhost.evil.example",
        "a/b",
    ] {
        let response = page(stack.base.clone(), refused).await;
        assert!(
            response.starts_with("HTTP/1.1 400 "),
            "{refused}: {response}"
        );
        assert!(
            response.contains("content-type: text/html; charset=utf-8\r\n"),
            "{response}"
        );
        assert!(
            response.ends_with("\r\n\r\n<h1>Bad Request (400)</h1>"),
            "{response}"
        );
        assert!(!response.contains("evil"), "{response}");
    }
    // The default list: loopback by name or address, on any port (as README's tour uses it).
    let allowed = page(stack.base.clone(), "LOCALHOST:8000").await;
    assert!(allowed.starts_with("HTTP/1.1 200 "), "{allowed}");
    assert!(
        allowed.contains(r#""next":"http://LOCALHOST:8000/api/products/?limit=1&offset=1""#),
        "{allowed}"
    );

    let inventory_url = stack.inventory_url.to_string();
    let subdomains = stack
        .extra_gateway(&inventory_url, |config| {
            config.allowed_hosts = ".example.com".parse().unwrap();
        })
        .await;
    assert!(
        page(subdomains.clone(), "api.example.com")
            .await
            .starts_with("HTTP/1.1 200 ")
    );
    assert!(
        page(subdomains.clone(), "example.com")
            .await
            .starts_with("HTTP/1.1 200 ")
    );
    assert!(
        page(subdomains.clone(), "badexample.com")
            .await
            .starts_with("HTTP/1.1 400 ")
    );
    assert!(
        page(subdomains, "127.0.0.1")
            .await
            .starts_with("HTTP/1.1 400 ")
    );
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

/// The repository's contract, docs/API.md, stays in step with the schema the gateway serves:
/// every operation of `/api/schema/` is described there, method and path.
#[tokio::test]
async fn docs_api_md_describes_every_operation_of_the_schema() {
    let stack = spawn_stack().await;
    let schema = expect_status(stack.get("/api/schema/", None).await, StatusCode::OK).await;
    let contract = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md"))
        .expect("docs/API.md is in the repository");
    let mut missing = Vec::new();
    for (path, methods) in schema["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            // Rows name a route as `METHOD /path/`, or several methods as `PUT`/`PATCH /path/`;
            // paths work with and without the trailing slash.
            let bare = path.trim_end_matches('/');
            let described = contract.lines().any(|line| {
                (line.contains(&format!("{path}`")) || line.contains(&format!("{bare}`")))
                    && (line.contains(&format!("`{method} "))
                        || line.contains(&format!("`{method}`")))
            });
            if !described {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/API.md: {missing:?}");
}

#[test]
fn the_binary_answers_help_and_unknown_arguments_without_serving() {
    let run = |argument: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg(argument)
            // A port in use would not matter: nothing may be bound.
            .env("GATEWAY_LISTEN", "127.0.0.1:0")
            .output()
            .expect("the binary runs")
    };
    let help = run("--help");
    assert!(help.status.success());
    let usage = String::from_utf8_lossy(&help.stdout);
    assert!(
        usage.contains("Usage: gateway") && usage.contains("healthcheck"),
        "{usage}"
    );
    let unknown = run("serve-please");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unrecognized subcommand"));
}
