//! The request id: read from `x-request-id` (or made up), set on every log line of the call
//! through a span, and forwarded to the services this one calls.

use std::task::{Context, Poll};

use http::{HeaderValue, Request};
use tonic::metadata::{MetadataMap, MetadataValue};
use tower::{Layer, Service};
use tracing::{Instrument, instrument::Instrumented};

/// The header (and gRPC metadata key) that carries the id.
pub const HEADER: &str = "x-request-id";

/// Longer ids are replaced: they would bloat every log line.
const MAX_LEN: usize = 128;

/// A fresh id: 128 random bits in hex.
pub fn generate() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}

/// The client's id if it is usable (short, visible ASCII), else `None`.
pub fn accept(value: Option<&HeaderValue>) -> Option<String> {
    let value = value?.to_str().ok()?;
    let usable =
        !value.is_empty() && value.len() <= MAX_LEN && value.bytes().all(|b| b.is_ascii_graphic());
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

impl<S, B> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = accept(request.headers().get(HEADER)).unwrap_or_else(generate);
        // Handlers forward what they find in the metadata, so a made-up id must be put there too.
        if let Ok(value) = HeaderValue::from_str(&id) {
            request.headers_mut().insert(HEADER, value);
        }
        let span = tracing::info_span!("grpc", request_id = %id, method = %request.uri().path());
        self.inner.call(request).instrument(span)
    }
}
