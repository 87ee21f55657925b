//! The client behind proxies (`TRUSTED_PROXIES`, `NUM_PROXIES`), as the throttle, the lockout's
//! `x-client-address` and the cookies see it, and the probes that answer any `Host`. Every test
//! client connects from 127.0.0.1, so trusting that address makes the test a proxy; the fake's
//! login refuses every password and records what the gateway sent.

use reqwest::{Method, Response, StatusCode, header};

use super::sessions::spawn_logging_in;
use crate::{
    fake_upstream::{FakeStack, LOGIN, product, spawn_fake, spawn_fake_with, wrong_password},
    helpers::{credentials, raw_exchange},
    logs::{capture_logs, run_alone},
};

/// A gateway trusting `trusted` (and `count` proxies), two password checks a minute per client,
/// in front of a fake that refuses every password.
async fn spawn_behind(trusted: &str, count: Option<usize>) -> FakeStack {
    let stack = spawn_fake_with(|config| {
        config.trusted_proxies = trusted.parse().unwrap();
        config.num_proxies = gateway::forwarded::ProxyCount(count);
        config.auth_rate = Some("2/minute".parse().unwrap());
    })
    .await;
    stack.fake.answer(LOGIN, Err(wrong_password()));
    stack
}

/// A login with `X-Forwarded-For: forwarded`: its status.
async fn log_in_forwarded_for(stack: &FakeStack, forwarded: &str) -> StatusCode {
    let request = stack.request(Method::POST, "/api/login/");
    let request = request.header("x-forwarded-for", forwarded);
    let response = request.json(&credentials("alice")).send().await.unwrap();
    response.status()
}

/// The client address the gateway named to auth on its latest login.
pub(super) fn last_client(stack: &FakeStack) -> String {
    let logins = stack.fake.requests(LOGIN);
    let login = logins.last().expect("a login reached auth");
    let named = login.header(proto::credentials::CLIENT_ADDRESS_KEY);
    named.expect("the client is named").to_owned()
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_throttled_and_named_apart() {
    let stack = spawn_behind("127.0.0.1, 10.0.0.0/8", None).await;
    let (one, other) = ("203.0.113.1", "2001:db8::2");
    for _ in 0..2 {
        assert_eq!(
            log_in_forwarded_for(&stack, one).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(last_client(&stack), one);
    }
    assert_eq!(
        log_in_forwarded_for(&stack, one).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy has a bucket of its own, and a port is no part of it.
    let status = log_in_forwarded_for(&stack, "[2001:db8::2]:4431").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(last_client(&stack), other);
    // The first client forging an entry left of its own, through two trusted hops, is still
    // itself: the forged entry is never reached.
    let forged = format!("{other}, {one}, 10.0.0.5");
    assert_eq!(
        log_in_forwarded_for(&stack, &forged).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A malformed hop stops the walk at the trusted one to its right, never further left.
    let status = log_in_forwarded_for(&stack, "203.0.113.3, unknown, 10.0.0.5").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(last_client(&stack), "10.0.0.5");
}

#[tokio::test]
async fn an_untrusted_peers_forwarded_for_is_ignored() {
    let stack = spawn_behind("10.0.0.0/8", None).await;
    let statuses = [
        log_in_forwarded_for(&stack, "203.0.113.1").await,
        log_in_forwarded_for(&stack, "203.0.113.2").await,
        log_in_forwarded_for(&stack, "203.0.113.3").await,
    ];
    let expected = [
        StatusCode::UNAUTHORIZED,
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
    ];
    assert_eq!(statuses, expected);
    assert_eq!(last_client(&stack), "127.0.0.1");
}

#[tokio::test]
async fn num_proxies_takes_the_entry_that_many_from_the_right() {
    let stack = spawn_behind("", Some(2)).await;
    let status = log_in_forwarded_for(&stack, "198.51.100.7, 203.0.113.9, 10.0.0.5").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(last_client(&stack), "203.0.113.9");
    // Fewer hops than proxies: the request did not come through them all, and the peer stands.
    log_in_forwarded_for(&stack, "198.51.100.7").await;
    assert_eq!(last_client(&stack), "127.0.0.1");
}

/// A login to the fake that opens a session, with `X-Forwarded-Proto: https` and `Origin`.
async fn log_in_over_https(stack: &FakeStack, origin: Option<&str>) -> Response {
    let request = stack.request(Method::POST, "/login/");
    let mut request = request.header("x-forwarded-proto", "https");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    request.json(&credentials("alice")).send().await.unwrap()
}

fn cookies_all_secure(response: &Response) -> bool {
    let cookies = response.headers().get_all(header::SET_COOKIE);
    assert_eq!(cookies.iter().count(), 2, "{:?}", response.headers());
    cookies
        .iter()
        .all(|cookie| cookie.to_str().unwrap().ends_with("; Secure"))
}

#[tokio::test]
async fn forwarded_https_from_a_trusted_proxy_makes_the_request_secure() {
    let trusting = spawn_logging_in(|config| {
        config.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    assert!(cookies_all_secure(
        &log_in_over_https(&trusting, None).await
    ));
    let plain = trusting.post("/login/", None, credentials("alice")).await;
    assert!(
        !plain.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Secure")
    );
    // The gateway's own origin is then https://.
    let own = trusting.base.replace("http://", "https://");
    let response = log_in_over_https(&trusting, Some(&own)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let insecure = log_in_over_https(&trusting, Some(&trusting.base)).await;
    assert_eq!(insecure.status(), StatusCode::FORBIDDEN);

    let untrusting = spawn_logging_in(|config| {
        config.trusted_proxies = "10.0.0.1".parse().unwrap();
    })
    .await;
    assert!(!cookies_all_secure(
        &log_in_over_https(&untrusting, None).await
    ));
}

#[tokio::test]
async fn paging_links_are_https_behind_a_proxy_that_says_so() {
    let stack = spawn_fake_with(|config| {
        config.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    stack
        .fake
        .set_products(vec![product(1, "a"), product(2, "b")]);
    let page = stack
        .request(Method::GET, "/api/products/?limit=1")
        .header(header::AUTHORIZATION, "Token key-1")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = page.json().await.unwrap();
    let next = body["next"].as_str().expect("a next link");
    assert!(next.starts_with("https://127.0.0.1:"), "{next}");
}

/// The kubelet and Prometheus name the pod by its IP: the probes answer, the API does not.
#[tokio::test]
async fn probes_answer_any_host_and_the_api_keeps_allowed_hosts() {
    let stack = spawn_fake().await;
    let status_of = |path: &'static str| {
        let base = stack.base.clone();
        async move {
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: 10.1.2.3:8000\r\nConnection: close\r\n\r\n");
            let response = raw_exchange(&base, request.as_bytes()).await;
            response[9..12].to_owned()
        }
    };
    for probe in [
        "/healthz/",
        "/healthz",
        "/readyz/",
        "/readyz",
        "/metrics",
        "/metrics/",
    ] {
        assert_eq!(status_of(probe).await, "200", "{probe}");
    }
    for api in [
        "/api/products/",
        "/api/schema/",
        "/api/login/",
        "/healthzz/",
    ] {
        assert_eq!(status_of(api).await, "400", "{api}");
    }
}

/// The request log names the forwarded client; read from the logs of a process of its own.
#[test]
fn the_request_log_names_the_forwarded_client() {
    run_alone("routes::proxies::request_log_of_a_forwarded_client");
}

#[tokio::test]
#[ignore = "run by the_request_log_names_the_forwarded_client, in a process of its own"]
async fn request_log_of_a_forwarded_client() {
    let captured = capture_logs(tracing::Level::INFO);
    let stack = spawn_behind("127.0.0.1", None).await;
    let request = stack.request(Method::GET, "/healthz/");
    let request = request.header("x-forwarded-for", "198.51.100.23");
    assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);
    let logs = captured.text();
    let answered = logs.lines().filter(|line| line.contains("answered"));
    let mut lines = answered.filter(|line| line.contains("path=/healthz/"));
    assert!(
        lines.any(|line| line.contains("client=198.51.100.23")),
        "{logs}"
    );
}
