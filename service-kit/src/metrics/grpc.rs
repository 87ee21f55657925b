//! Every gRPC call as Prometheus series, on both sides: [`GrpcMetricsLayer`] counts the calls a
//! server answers, [`Call`] those a client (an [`Upstream`](crate::upstream::Upstream)) makes:
//! `grpc_{server,client}_handled_total{grpc_service, grpc_method, grpc_code}` when the call ends
//! (its `grpc-status`, from the headers of a trailers-only answer or from the trailers; a call
//! that got no answer counts by the status its caller sees), and
//! `grpc_{server,client}_handling_seconds{grpc_service, grpc_method}`. Only methods the
//! workspace's contracts, health and reflection declare are named; any other path counts as
//! `unknown`, so a client sending made-up paths cannot grow the series without bound.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Instant,
};

use http_body::{Frame, SizeHint};
use prost::Message as _;
use tonic::{Code, body::Body};
use tower::{Layer, Service};

/// Which end of a call is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Calls this process answered.
    Server,
    /// Calls this process made, second tries included.
    Client,
}

impl Side {
    const fn handled(self) -> &'static str {
        match self {
            Self::Server => "grpc_server_handled_total",
            Self::Client => "grpc_client_handled_total",
        }
    }

    const fn handling(self) -> &'static str {
        match self {
            Self::Server => "grpc_server_handling_seconds",
            Self::Client => "grpc_client_handling_seconds",
        }
    }
}

/// Failed calls a client sent a second time, to another replica.
pub(crate) const RESENT: &str = "grpc_client_resent_total";
/// The replicas of a service in a client's balancer.
pub(crate) const REPLICAS: &str = "grpc_client_replicas";

pub(super) fn describe() {
    for side in [Side::Server, Side::Client] {
        metrics::describe_counter!(
            side.handled(),
            "gRPC calls completed, by service, method and code."
        );
        metrics::describe_histogram!(
            side.handling(),
            metrics::Unit::Seconds,
            "How long gRPC calls took, from their head to their status."
        );
    }
    metrics::describe_counter!(
        RESENT,
        "Failed gRPC calls sent a second time, to another replica, by service and method."
    );
    metrics::describe_gauge!(
        REPLICAS,
        "Replicas of a service in this process's balancer (those answering SERVING)."
    );
}

/// The labels of each `service/method` a call may be labelled with, by its full name. Made
/// once, from a bounded set (the contracts' methods, health, reflection), so that labelling a
/// call allocates nothing.
fn known() -> &'static HashMap<&'static str, (&'static str, &'static str)> {
    static KNOWN: OnceLock<HashMap<&'static str, (&'static str, &'static str)>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut names: Vec<String> = [
            "grpc.health.v1.Health/Check",
            "grpc.health.v1.Health/Watch",
            "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ]
        .map(str::to_owned)
        .into();
        let set = prost_types::FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET)
            .expect("the contracts' descriptors decode");
        for file in set.file {
            let package = file.package();
            for service in &file.service {
                for method in &service.method {
                    names.push(format!("{package}.{}/{}", service.name(), method.name()));
                }
            }
        }
        names
            .into_iter()
            .map(|name| {
                let name: &'static str = name.leak();
                let labels = name.split_once('/').expect("service/method");
                (name, labels)
            })
            .collect()
    })
}

/// The labels of a call to `path` (`/package.Service/Method`): its service and method when the
/// contracts declare them, else `unknown` twice.
fn labels(path: &str) -> (&'static str, &'static str) {
    known()
        .get(path.trim_start_matches('/'))
        .copied()
        .unwrap_or(("unknown", "unknown"))
}

/// Every code's name as Prometheus' gRPC exporters give it, by the code's number.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Cancelled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// A code as Prometheus' gRPC exporters name it: `OK`, `Unauthenticated`, `NotFound`...
fn code_name(code: Code) -> &'static str {
    usize::try_from(code as i32)
        .ok()
        .and_then(|number| CODE_NAMES.get(number))
        .copied()
        .unwrap_or("Unknown")
}

fn status_of(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// Counts and times every call of the service it wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for GrpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = Call::start(Side::Server, request.uri().path());
        let answer = self.inner.call(request);
        Box::pin(async move { Ok(call.answered(answer.await?)) })
    }
}

/// One call under way: its side, its labels and when it began.
pub struct Call {
    side: Side,
    labels: (&'static str, &'static str),
    started: Instant,
}

impl Call {
    /// A call to `path` (`/package.Service/Method`) begins.
    pub fn start(side: Side, path: &str) -> Self {
        Self {
            side,
            labels: labels(path),
            started: Instant::now(),
        }
    }

    /// The call was answered: it ends with the answer's head when that carries the status (a
    /// trailers-only answer), else at the trailers of the body returned.
    pub fn answered(self, response: http::Response<Body>) -> http::Response<Body> {
        match status_of(response.headers()) {
            Some(code) => {
                self.end(code);
                response
            }
            None => response.map(|body| {
                Body::new(Counted {
                    body,
                    call: Some(self),
                })
            }),
        }
    }

    /// The call ended with no answer, as its caller sees it: by the status in `error`'s
    /// sources, else UNAVAILABLE (a transport failure).
    pub fn failed(self, error: &(dyn std::error::Error + 'static)) {
        let mut cause = Some(error);
        while let Some(error) = cause {
            if let Some(status) = error.downcast_ref::<tonic::Status>() {
                return self.end(status.code());
            }
            // Its deadline passed: tonic tells the caller CANCELLED.
            if error.is::<tonic::TimeoutExpired>() {
                return self.end(Code::Cancelled);
            }
            cause = error.source();
        }
        self.end(Code::Unavailable);
    }

    fn end(self, code: Code) {
        let (service, method) = self.labels;
        let seconds = self.started.elapsed().as_secs_f64();
        metrics::histogram!(self.side.handling(), "grpc_service" => service, "grpc_method" => method)
            .record(seconds);
        metrics::counter!(
            self.side.handled(),
            "grpc_service" => service,
            "grpc_method" => method,
            "grpc_code" => code_name(code)
        )
        .increment(1);
    }
}

/// A failed call sent again: `grpc_client_resent_total`.
pub(crate) fn resent(path: &str) {
    let (service, method) = labels(path);
    metrics::counter!(RESENT, "grpc_service" => service, "grpc_method" => method).increment(1);
}

/// An answer's body, ending its call at its trailers (or, dropped before them, as CANCELLED:
/// the client went away, or the stream was cut).
struct Counted {
    body: Body,
    call: Option<Call>,
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(trailers) = frame.trailers_ref()
            && let Some(call) = self.call.take()
        {
            call.end(status_of(trailers).unwrap_or(Code::Unknown));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.end(Code::Cancelled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_methods_are_labels() {
        assert_eq!(
            labels("/auth.v1.AuthService/Login"),
            ("auth.v1.AuthService", "Login")
        );
        assert_eq!(labels("/grpc.health.v1.Health/Check").1, "Check");
        for made_up in [
            "/auth.v1.AuthService/Logn",
            "/x.Y/Z",
            "/",
            "/auth.v1.AuthService",
        ] {
            assert_eq!(labels(made_up).0, "unknown", "{made_up}");
        }
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::Unauthenticated), "Unauthenticated");
        // Every other code by the name tonic gives it.
        for number in 1..17 {
            let code = Code::from_i32(number);
            assert_eq!(code_name(code), format!("{code:?}"), "{number}");
        }
    }
}
