//! Prometheus metrics for the gRPC services: the process's one recorder (the `metrics` facade,
//! rendered in Prometheus' text format by metrics-exporter-prometheus), the `process_*` series
//! (metrics-process), the HTTP listener auth and inventory serve them on (`METRICS_LISTEN`,
//! `GET /metrics`), and the gRPC series ([`grpc`]): every call, served or made, counted by
//! service, method and code, and timed, with labels bounded to the methods the workspace's
//! contracts declare. The other modules record their own series through the `metrics` macros;
//! with no recorder installed (no `METRICS_LISTEN`), those record nothing.

pub mod grpc;

pub use grpc::GrpcMetricsLayer;

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

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

/// Set once the recorder is installed: until then, callers may skip preparing what they
/// would record (labels that cost an allocation).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Whether this process records metrics (its recorder is installed).
pub fn enabled() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

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
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(crate::database::BATCH_SIZE.to_owned()),
                    &crate::database::BATCH_BUCKETS,
                )
            })
            .expect("the buckets are not empty");
        let handle = builder.install_recorder().unwrap_or_else(|err| {
            tracing::warn!(%err, "another metrics recorder is installed: /metrics stays empty");
            PrometheusBuilder::new().build_recorder().handle()
        });
        let process = metrics_process::Collector::default();
        process.describe();
        grpc::describe();
        crate::database::describe();
        INSTALLED.store(true, Ordering::Relaxed);
        for describe in describers().iter() {
            describe();
        }
        Recorder { handle, process }
    })
}

/// The help texts of series recorded outside this crate, given once the recorder exists.
static DESCRIBERS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());

fn describers() -> std::sync::MutexGuard<'static, Vec<fn()>> {
    DESCRIBERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Gives a module's help texts (`describe`, a function of `metrics::describe_*!` calls) to the
/// recorder: now if it is installed, else when it is, so that every series has its help
/// whichever of a process's parts installs the recorder first.
pub fn describe_with(describe: fn()) {
    if enabled() {
        describe();
    } else {
        describers().push(describe);
    }
}

/// Installs the recorder now, so that the calls before the first scrape are counted too.
pub fn install() {
    recorder();
}

type Collector = Box<dyn Fn() + Send + Sync>;

/// What runs before each scrape, by registration.
static COLLECTORS: Mutex<Vec<(u64, Collector)>> = Mutex::new(Vec::new());

fn collectors() -> std::sync::MutexGuard<'static, Vec<(u64, Collector)>> {
    COLLECTORS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A collector registered by [`on_scrape`]; dropped, it runs no more (and drops what it holds).
#[derive(Debug)]
#[must_use = "the collector runs only while this is kept"]
pub struct Collecting(Option<u64>);

impl Drop for Collecting {
    fn drop(&mut self) {
        if let Some(id) = self.0 {
            collectors().retain(|(registered, _)| *registered != id);
        }
    }
}

/// Runs `collect` before every scrape, while the returned guard lives: for gauges read from
/// state that is cheap to look at and costly to track on every change (a pool's connections, a
/// queue's length). Without a recorder, nothing is registered.
pub fn on_scrape(collect: impl Fn() + Send + Sync + 'static) -> Collecting {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if !enabled() {
        return Collecting(None);
    }
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    collectors().push((id, Box::new(collect)));
    Collecting(Some(id))
}

/// The metrics in Prometheus' text format, the `process_*` series and the collectors' gauges
/// read now.
pub fn render() -> String {
    let recorder = recorder();
    recorder.process.collect();
    for (_, collect) in collectors().iter() {
        collect();
    }
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
