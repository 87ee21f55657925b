//! The request id and the access log: every request gets an id (the client's `X-Request-Id`,
//! or one made here) that the handlers pass on to the services, every line logged while it is
//! served carries it, and one `answered` line at `info` says how it ended. While spans are
//! exported, the request's span is the trace's root here, or continues the client's. Its own module so
//! that `RUST_LOG` can hold the per-request line apart from the server's own
//! (`gateway::request_log=warn`).

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use http::HeaderValue;
use service_kit::{
    request_id::{HEADER, accept, generate},
    telemetry::context,
};
use tracing::Instrument;

use crate::{extract::RequestId, forwarded::ClientAddress};

/// Accepts the client's `X-Request-Id` (or makes one), hands it to the handlers, logs under it
/// (with the client's address) and returns it on the response.
pub async fn record(mut request: Request, next: Next) -> Response {
    let id = accept(request.headers().get(HEADER)).unwrap_or_else(generate);
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = if context::enabled() {
        traced_span(&request, &id)
    } else {
        tracing::info_span!(
            "http",
            request_id = %id,
            method = %request.method(),
            path = %request.uri().path(),
            client = tracing::field::Empty,
        )
    };
    if let Some(ClientAddress(client)) = request.extensions().get::<ClientAddress>() {
        span.record("client", tracing::field::display(client));
    }
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), latency_us, "answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// The request's span when spans are exported: the log's fields, and what OpenTelemetry's HTTP
/// conventions name (`GET /api/products/{id}/` by its route), continuing the client's
/// `traceparent` when it sent one.
fn traced_span(request: &Request, id: &str) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let method = request.method();
    let name = route.map_or_else(|| method.to_string(), |route| format!("{method} {route}"));
    let span = tracing::info_span!(
        "http",
        request_id = %id,
        method = %method,
        path = %request.uri().path(),
        client = tracing::field::Empty,
        otel.name = %name,
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    context::continue_from(&span, request.headers());
    span
}
