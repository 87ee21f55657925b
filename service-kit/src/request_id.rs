//! The request id: read from `x-request-id` (or made up), set on every log line of the call
//! through a span, and forwarded to the services this one calls. The layer also writes one
//! access line per call, so every call leaves its id in the log of each service it crossed.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use http::{HeaderValue, Request, Response};
use tonic::metadata::{MetadataMap, MetadataValue};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::telemetry;

/// The header (and gRPC metadata key) that carries the id.
pub const HEADER: &str = "x-request-id";

/// Longer ids are replaced: they would bloat every log line.
const MAX_LEN: usize = 64;

/// A fresh id: 128 random bits in hex.
pub fn generate() -> String {
    /// Ids drawn from one read of the OS random source: a system call per request was a
    /// visible share of the gateway's calls under load, and one per 64 is not.
    const IDS_PER_READ: usize = 64;
    thread_local! {
        static DRAWN: std::cell::RefCell<([[u8; 16]; IDS_PER_READ], usize)> =
            const { std::cell::RefCell::new(([[0; 16]; IDS_PER_READ], IDS_PER_READ)) };
    }
    DRAWN.with_borrow_mut(|(ids, used)| {
        if *used == IDS_PER_READ {
            getrandom::fill(ids.as_flattened_mut()).expect("the OS random source is available");
            *used = 0;
        }
        *used += 1;
        hex::encode(ids[*used - 1])
    })
}

/// The client's id if it is usable, else `None`: 1 to 64 letters, digits, `.`, `_` or `-`.
/// Anything wider (quotes, `=`, `{`, `/`) could forge fields in a plain or JSON log line, or
/// break the tools that split on them, so such an id is replaced rather than escaped.
pub fn accept(value: Option<&HeaderValue>) -> Option<String> {
    let value = value?.to_str().ok()?;
    let usable = !value.is_empty()
        && value.len() <= MAX_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    usable.then(|| value.to_owned())
}

/// Copies the id of an incoming call onto an outgoing one, so the callee logs the same id.
pub fn forward(from: &MetadataMap, to: &mut MetadataMap) {
    if let Some(id) = from.get(HEADER) {
        to.insert(HEADER, id.clone());
    }
}

/// Sets `id` on outgoing metadata.
pub fn set(to: &mut MetadataMap, id: &str) {
    if let Ok(value) = MetadataValue::try_from(id) {
        to.insert(HEADER, value);
    }
}

/// Wraps a gRPC server: every call runs in a `grpc` span with `request_id` and `method`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, B, ResBody> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = accept(request.headers().get(HEADER)).unwrap_or_else(generate);
        // Handlers forward what they find in the metadata, so a made-up id must be put there too.
        if let Ok(value) = HeaderValue::from_str(&id) {
            request.headers_mut().insert(HEADER, value);
        }
        let span = if telemetry::context::enabled() {
            // Exported: named and kinded as OpenTelemetry's conventions say, under the caller's.
            let method = request.uri().path();
            let span = tracing::info_span!(
                "grpc",
                request_id = %id,
                method = %method,
                otel.name = %method.trim_start_matches('/'),
                otel.kind = "server",
                rpc.system = "grpc",
            );
            telemetry::context::continue_from(&span, request.headers());
            span
        } else {
            tracing::info_span!("grpc", request_id = %id, method = %request.uri().path())
        };
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(
            async move {
                let result = call.await;
                if let Ok(response) = &result {
                    // A unary call that fails answers with its status in the headers
                    // (trailers-only); one that succeeds sends 0 in the trailers.
                    let status = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("0");
                    let latency_us =
                        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    tracing::info!(grpc_status = status, latency_us, "call");
                }
                result
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{ServiceExt, service_fn};

    use super::*;

    /// The id the inner service saw, through the layer.
    async fn seen_id(request: Request<()>) -> String {
        let inner = service_fn(|request: Request<()>| async move {
            let id = request
                .headers()
                .get(HEADER)
                .map(|v| v.to_str().unwrap().to_owned());
            Ok::<_, Infallible>(Response::new(id.unwrap_or_default()))
        });
        RequestIdLayer
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap()
            .into_body()
    }

    /// Across several reads of the random source: every id new, 32 hex digits.
    #[test]
    fn generated_ids_are_128_random_bits_and_never_repeat() {
        let ids: Vec<String> = (0..1000).map(|_| generate()).collect();
        for id in &ids {
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[tokio::test]
    async fn keeps_a_usable_client_id_and_replaces_the_rest() {
        let with = |value: &str| Request::builder().header(HEADER, value).body(()).unwrap();
        assert_eq!(seen_id(with("abc-123")).await, "abc-123");
        let longest = format!("A.b_c-{}", "9".repeat(58));
        assert_eq!(seen_id(with(&longest)).await, longest);
        for unusable in [
            "",
            "has space",
            &"x".repeat(65),
            "a\"b",
            "id=forged",
            "{json}",
            "a/b",
            "tab\tbed",
        ] {
            let id = seen_id(with(unusable)).await;
            assert_eq!(id.len(), 32, "{unusable:?} -> {id:?}");
        }
        let made_up = seen_id(Request::new(())).await;
        assert!(made_up.bytes().all(|b| b.is_ascii_hexdigit()) && made_up.len() == 32);
    }
}
