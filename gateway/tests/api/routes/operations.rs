//! The routes for operators and the conventions of every response, on the fake: schema,
//! health, readiness, metrics, request ids, trailing slashes, form bodies and `ALLOWED_HOSTS`
//! (paging is in `shapes`).

use proto::auth::v1::{IssuedCredential, LoginResponse, Role};
use reqwest::{Method, StatusCode, header};
use serde_json::json;
use service_kit::testing::scrape::{promtool_accepts, value};

use super::conformance::Document;
use crate::{
    fake_upstream::{GET_PRODUCT, LOGIN, product, spawn_fake, user},
    helpers::{PASSWORD, expect, expect_status, raw_exchange},
};

#[tokio::test]
async fn schema_documents_every_route_and_every_route_is_served() {
    let stack = spawn_fake().await;
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
    let document = Document(schema.clone());
    for (path, method, operation) in document.operations() {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = stack
            .request(method.clone(), &document.example_path(path, operation))
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

#[tokio::test]
async fn health_readiness_and_metrics() {
    let stack = spawn_fake().await;
    expect(
        stack.get("/healthz", None).await,
        StatusCode::OK,
        json!({"status": "ok"}),
    )
    .await;
    let addr = stack.base.trim_start_matches("http://").parse().unwrap();
    gateway::server::probe_health(addr, "localhost", None)
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
    // The recorder is the process's: other tests' requests count too.
    let refused = [
        r#"method="GET""#,
        r#"route="/api/inventory/""#,
        r#"status="401""#,
    ];
    assert!(
        value(&text, "http_requests_total", &refused) >= Some(1.0),
        "{text}"
    );
    let timed = [&refused[..], &[r#"le="+Inf""#]].concat();
    assert!(value(&text, "http_request_duration_seconds_bucket", &timed) >= Some(1.0));
    let process = value(&text, "process_resident_memory_bytes", &[]);
    assert!(process > Some(0.0), "{text}");
    promtool_accepts(&text);
}

#[tokio::test]
async fn request_ids_are_returned_and_kept() {
    let stack = spawn_fake().await;
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
    // The services are told the same id.
    stack
        .request(Method::GET, "/api/products/1/")
        .header("X-Request-Id", "client-chosen-id-2")
        .header(header::AUTHORIZATION, "Token key-1")
        .send()
        .await
        .unwrap();
    let told = stack.fake.requests(GET_PRODUCT);
    assert_eq!(told[0].header("x-request-id"), Some("client-chosen-id-2"));
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
    let stack = spawn_fake().await;
    let key = "0123456789abcdef0123456789abcdef01234567";
    let issued = IssuedCredential {
        key: key.to_owned(),
        ..IssuedCredential::default()
    };
    let answer = LoginResponse {
        token: Some(issued),
        session: None,
        user: Some(user(1, "alice", Role::Clerk)),
        ..LoginResponse::default()
    };
    stack.fake.answer(LOGIN, Ok(answer));
    let response = stack
        .request(Method::POST, "/api/login")
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    expect(response, StatusCode::OK, json!({ "token": key })).await;
    let [login] = &stack.fake.requests(LOGIN)[..] else {
        panic!("one Login call");
    };
    assert_eq!(login.message.username.as_deref(), Some("alice"));
    assert_eq!(login.message.password.as_deref(), Some(PASSWORD));
    assert!(!login.message.open_session);
}

/// Any token is a method to HTTP; `/metrics` keeps one series per label, so a client must not
/// be able to add labels: unknown methods count as `other`, unknown paths as `unmatched`.
#[tokio::test]
async fn metrics_labels_stay_bounded_whatever_the_client_sends() {
    let stack = spawn_fake().await;
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
    for (labels, at_least) in [
        (
            [
                r#"method="other""#,
                r#"route="/api/products/""#,
                r#"status="405""#,
            ],
            2.0,
        ),
        (
            [
                r#"method="other""#,
                r#"route="unmatched""#,
                r#"status="404""#,
            ],
            1.0,
        ),
        (
            [r#"method="GET""#, r#"route="unmatched""#, r#"status="404""#],
            1.0,
        ),
    ] {
        let counted = value(&text, "http_requests_total", &labels);
        assert!(counted >= Some(at_least), "{labels:?}: {text}");
    }
}

/// `ALLOWED_HOSTS`: another `Host` gets Django's plain 400 on every route, and paging links
/// carry only an allowed host.
#[tokio::test]
async fn hosts_outside_allowed_hosts_get_djangos_400_and_never_reach_a_link() {
    let mut stack = spawn_fake().await;
    stack
        .fake
        .set_products(vec![product(1, "a"), product(2, "b")]);
    let page = |base: String, host: &'static str| async move {
        let request = format!(
            "GET /api/products/?limit=1 HTTP/1.1\r\nHost: {host}\r\n\
                 Authorization: Token key-1\r\nConnection: close\r\n\r\n"
        );
        raw_exchange(&base, request.as_bytes()).await
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

    let subdomains = stack
        .extra_gateway(|config| {
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

/// The repository's contract, docs/API.md, stays in step with the schema the gateway serves:
/// every operation of `/api/schema/` is described there, method and path.
#[tokio::test]
async fn docs_api_md_describes_every_operation_of_the_schema() {
    let stack = spawn_fake().await;
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
    let binary = env!("CARGO_BIN_EXE_gateway");
    service_kit::testing::assert_command_line(binary, "gateway", env!("CARGO_PKG_VERSION"));
}
