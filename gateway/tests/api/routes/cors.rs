//! CORS (`CORS_ALLOWED_ORIGINS`): nothing by default; for a listed origin, preflights answered
//! before any route (no 401, 405 or 429) and answers a page may read with credentials; for an
//! unlisted one, no `Access-Control-*` header at all.

use reqwest::{Method, RequestBuilder, Response, StatusCode, header};

use crate::{
    fake_upstream::{FakeStack, spawn_fake, spawn_fake_with},
    helpers::{credentials, raw_exchange},
};

const LISTED: &str = "https://app.example.com";

/// A gateway allowing [`LISTED`] and the subdomains of `example.org`, one password check a
/// minute per client.
async fn spawn_allowing() -> FakeStack {
    spawn_fake_with(|config| {
        config.cors_allowed_origins = format!("{LISTED}, https://*.example.org").parse().unwrap();
        config.auth_rate = Some("1/minute".parse().unwrap());
    })
    .await
}

/// A preflight of `POST path` from `origin`, with the headers a page's `fetch` would ask for.
fn preflight(stack: &FakeStack, path: &str, origin: &str) -> RequestBuilder {
    stack
        .request(Method::OPTIONS, path)
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type,x-csrftoken,idempotency-key",
        )
}

fn value(response: &Response, name: header::HeaderName) -> String {
    let value = response.headers().get(&name);
    let value = value.unwrap_or_else(|| panic!("{name}: {:?}", response.headers()));
    value.to_str().unwrap().to_ascii_lowercase()
}

fn access_control_headers(response: &Response) -> Vec<String> {
    let names = response
        .headers()
        .keys()
        .map(|name| name.as_str().to_owned());
    names
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

/// `GET /api/products/` (a 401: no credentials) from a page of `origin`.
async fn products_from(stack: &FakeStack, origin: &str) -> Response {
    let request = stack.request(Method::GET, "/api/products/");
    request.header(header::ORIGIN, origin).send().await.unwrap()
}

#[tokio::test]
async fn no_cors_headers_by_default() {
    let stack = spawn_fake().await;
    let response = products_from(&stack, LISTED).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(access_control_headers(&response), Vec::<String>::new());
    let response = preflight(&stack, "/api/login/", LISTED)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(access_control_headers(&response), Vec::<String>::new());
}

#[tokio::test]
async fn a_listed_origins_preflight_is_answered_before_any_route() {
    let stack = spawn_allowing().await;
    // The protected route would be a 401, OPTIONS a 405, a second login a 429: preflights
    // reach none of them, and are not counted by the throttle.
    for path in [
        "/api/products/",
        "/api/products/1/",
        "/api/login/",
        "/api/login",
    ] {
        for origin in [LISTED, "https://shop.example.org"] {
            let response = preflight(&stack, path, origin).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                value(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
                origin
            );
            assert_eq!(
                value(&response, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
                "true"
            );
            let methods = value(&response, header::ACCESS_CONTROL_ALLOW_METHODS);
            for method in ["get", "post", "put", "patch", "delete"] {
                assert!(methods.contains(method), "{methods}");
            }
            let headers = value(&response, header::ACCESS_CONTROL_ALLOW_HEADERS);
            for name in [
                "authorization",
                "content-type",
                "idempotency-key",
                "x-csrftoken",
                "x-request-id",
            ] {
                assert!(headers.contains(name), "{headers}");
            }
            assert!(value(&response, header::VARY).contains("origin"));
        }
    }
    let login = stack.post("/api/login/", None, credentials("alice")).await;
    assert_ne!(login.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_unlisted_origin_gets_no_access_control_header() {
    let stack = spawn_allowing().await;
    for origin in [
        "https://evil.example",
        "http://app.example.com",
        "https://example.org.evil",
        "null",
    ] {
        let response = preflight(&stack, "/api/login/", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{origin}");
        assert_eq!(
            access_control_headers(&response),
            Vec::<String>::new(),
            "{origin}"
        );
        let response = products_from(&stack, origin).await;
        assert_eq!(
            access_control_headers(&response),
            Vec::<String>::new(),
            "{origin}"
        );
    }
}

#[tokio::test]
async fn a_listed_origins_page_may_read_answers_and_errors_with_credentials() {
    let stack = spawn_allowing().await;
    let response = products_from(&stack, LISTED).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        value(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        LISTED
    );
    assert_eq!(
        value(&response, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
        "true"
    );
    let exposed = value(&response, header::ACCESS_CONTROL_EXPOSE_HEADERS);
    for name in ["retry-after", "idempotent-replayed", "x-request-id"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    // No preflight answer's headers on a plain request.
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_METHODS)
            .is_none()
    );
}

#[tokio::test]
async fn a_preflight_for_another_host_is_djangos_400() {
    let stack = spawn_allowing().await;
    let request = format!(
        "OPTIONS /api/login/ HTTP/1.1\r\nHost: evil.example\r\nOrigin: {LISTED}\r\n\
         Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
    );
    let response = raw_exchange(&stack.base, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(
        !response.to_ascii_lowercase().contains("access-control-"),
        "{response}"
    );
}
