//! The request id and the access log: every request gets an id (the client's `X-Request-Id`,
//! or one made here) that the handlers pass on to the services, every line logged while it is
//! served carries it, and one `answered` line at `info` says how it ended. Its own module so
//! that `RUST_LOG` can hold the per-request line apart from the server's own
//! (`gateway::request_log=warn`).

use axum::{extract::Request, middleware::Next, response::Response};
use http::HeaderValue;
use service_kit::request_id::{HEADER, accept, generate};
use tracing::Instrument;

use crate::{extract::RequestId, forwarded::ClientAddress};

/// Accepts the client's `X-Request-Id` (or makes one), hands it to the handlers, logs under it
/// (with the client's address) and returns it on the response.
pub async fn record(mut request: Request, next: Next) -> Response {
    let id = accept(request.headers().get(HEADER)).unwrap_or_else(generate);
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "http",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        client = tracing::field::Empty,
    );
    if let Some(ClientAddress(client)) = request.extensions().get::<ClientAddress>() {
        span.record("client", tracing::field::display(client));
    }
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), latency_us, "answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
