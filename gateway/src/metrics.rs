//! The gateway's HTTP series, recorded into the process's one Prometheus recorder
//! (`service_kit::metrics`), which `/metrics` renders with the gRPC client series and the
//! `process_*` series: `http_requests_total{method, route, status}` and
//! `http_request_duration_seconds{method, route, status}`. Routes are labelled by their pattern
//! (`/api/products/{id}/`) and methods outside HTTP's standard set as `other`, so the number of
//! series stays bounded whatever clients send.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use http::Method;

const REQUESTS: &str = "http_requests_total";
const DURATION: &str = "http_request_duration_seconds";

/// The label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// The label of every method outside [`method_label`]'s set.
const OTHER_METHOD: &str = "other";

/// Installs the recorder and describes the gateway's series.
pub fn install() {
    service_kit::metrics::install();
    metrics::describe_counter!(
        REQUESTS,
        "HTTP requests answered, by method, route and status."
    );
    metrics::describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "Time to answer, by method, route and status."
    );
}

/// The method as a label: HTTP's standard methods by name, anything else as `other`. Clients
/// may send any token as a method, and each distinct label is a series kept until restart.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|name| *name == method.as_str())
        .unwrap_or(OTHER_METHOD)
}

/// Middleware: times every request and counts it under its route pattern.
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(DURATION, "method" => method, "route" => route.clone(), "status" => status.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(REQUESTS, "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_only_standard_methods_by_name() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for token in ["X1", "get", "PROPFIND"] {
            let method = Method::from_bytes(token.as_bytes()).unwrap();
            assert_eq!(method_label(&method), OTHER_METHOD, "{token}");
        }
    }
}
