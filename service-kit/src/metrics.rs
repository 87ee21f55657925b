//! Prometheus metrics for the gRPC services: the process's one recorder (the `metrics` facade,
//! rendered in Prometheus' text format by metrics-exporter-prometheus), the `process_*` series
//! (metrics-process), the HTTP listener auth and inventory serve them on (`METRICS_LISTEN`,
//! `GET /metrics`), and [`GrpcMetricsLayer`]: every call counted by service, method and code,
//! and timed, with labels bounded to the methods the workspace's contracts declare.

mod grpc;

pub use grpc::GrpcMetricsLayer;

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::env::{self, ConfigError};

/// `METRICS_LISTEN`: where `GET /metrics` is served; empty (the default): nowhere.
pub fn listen_from_env() -> Result<Option<SocketAddr>, ConfigError> {
    let value = env::string_or("METRICS_LISTEN", "");
    if value.trim().is_empty() {
        return Ok(None);
    }
    value
        .trim()
        .parse()
        .map(Some)
        .map_err(|err| ConfigError::new("METRICS_LISTEN", value.clone(), err))
}

/// The histogram buckets of every `_seconds` series: 100 µs to 10 s.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
];

struct Recorder {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

/// The process's recorder, installed on first use. Where another recorder was installed
/// first, this one records nothing and says so once.
fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &BUCKETS)
            .expect("the buckets are not empty");
        let handle = builder.install_recorder().unwrap_or_else(|err| {
            tracing::warn!(%err, "another metrics recorder is installed: /metrics stays empty");
            PrometheusBuilder::new().build_recorder().handle()
        });
        let process = metrics_process::Collector::default();
        process.describe();
        grpc::describe();
        Recorder { handle, process }
    })
}

/// Installs the recorder now, so that the calls before the first scrape are counted too.
pub fn install() {
    recorder();
}

/// The metrics in Prometheus' text format, the `process_*` series read now.
pub fn render() -> String {
    let recorder = recorder();
    recorder.process.collect();
    recorder.handle.run_upkeep();
    recorder.handle.render()
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves; anything else is a 404.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    install();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(%err, "metrics: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        tokio::spawn(async move {
            let answer = service_fn(|request: http::Request<Incoming>| async move {
                let response = if request.uri().path() == "/metrics" {
                    http::Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(Full::new(Bytes::from(render())))
                } else {
                    http::Response::builder()
                        .status(http::StatusCode::NOT_FOUND)
                        .body(Full::new(Bytes::from_static(b"not found: GET /metrics\n")))
                };
                Ok::<_, Infallible>(response.expect("a valid response"))
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), answer);
            if let Err(err) = connection.await {
                tracing::debug!(%err, "metrics: connection ended with an error");
            }
        });
    }
}
