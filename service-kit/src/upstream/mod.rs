//! Calls to a service that runs as several replicas. [`Targets`] are the endpoints `AUTH_URL` or
//! `INVENTORY_URL` list; each name among them is looked up again every `RESOLVE_INTERVAL_MS`,
//! so a replica that a scaled service gains or loses is found. Every address is watched over
//! `grpc.health.v1.Health`, by the service's name, and only those answering SERVING are in the
//! balanced tonic [`Channel`] ([`Upstream::channel`]); when none does, all are, so that calls fail
//! at once (as UNAVAILABLE) instead of waiting for a replica to come back.
//!
//! [`Upstream`] is the tower service clients call through: it sends a failed call a second time
//! when that cannot do a thing twice (`resend`), after the balancer has dropped every address
//! that no longer answers its health check, so the second try goes to another replica.
//!
//! - `targets`: the endpoints, as the settings give them (`http://`, or `https://` verified
//!   against `TLS_CA_FILE`).
//! - `discovery`: the task that finds the replicas and watches their health.
//! - `resend`: a call's tries, and whether a failed one is sent again.

mod discovery;
mod resend;
mod targets;

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};
use tonic::{body::Body, transport::Channel};
use tower::Service;
use tracing::Instrument;

use crate::{
    env::{self, ConfigError},
    metrics::grpc::{Call, Side},
    telemetry,
    tls::ClientTls,
};

use discovery::{Discovery, Event};
pub use targets::Targets;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Changes queued for the balancer, which reads them when it next routes a call.
const BALANCER_QUEUE: usize = 1024;

/// `RESOLVE_INTERVAL_MS`: how often the names in the targets are looked up again.
pub fn resolve_interval_from_env() -> Result<Duration, ConfigError> {
    env::millis_or("RESOLVE_INTERVAL_MS", "5000")
}

/// How an [`Upstream`] reaches its replicas.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `RESOLVE_INTERVAL_MS`: how often names are looked up again.
    pub resolve_interval: Duration,
    /// How long a call may take, its second try included, when the caller asks no shorter.
    pub timeout: Duration,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// `TLS_CA_FILE` (and the client certificate): how `https://` targets are verified.
    pub tls: Option<ClientTls>,
}

/// Checks at start-up that `https://` targets (the setting `name`) have a CA to be verified
/// against: without one, every call would fail, one by one, instead.
pub fn check_tls(
    name: &'static str,
    targets: &Targets,
    tls: Option<&ClientTls>,
) -> Result<(), ConfigError> {
    if targets.tls() && tls.is_none() {
        return Err(ConfigError::new(
            name,
            targets.to_string(),
            "is https:// but TLS_CA_FILE is not set: name the CA bundle to verify it against",
        ));
    }
    Ok(())
}

/// The replicas of one service, as one tower service for tonic's generated clients
/// (`AuthServiceClient::new(upstream)`). Cheap to clone. Unary and server-streaming calls only:
/// a request's body is read whole before it goes out, to be sent again if need be. A stream
/// that sends (WatchRevocations) goes on [`Upstream::channel`].
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Behind one pointer: every call clones the client, and a channel's clone alone is several
    /// atomic counts (its buffer's sender, semaphore and handle).
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    channel: Channel,
    events: mpsc::UnboundedSender<Event>,
    timeout: Duration,
}

impl Upstream {
    /// Starts finding and watching the replicas of `service` (its gRPC name, as its health
    /// reports it) at `targets`. The task ends when the last clone of the channel is dropped.
    pub fn spawn(service: &'static str, targets: &Targets, settings: Settings) -> Self {
        let (channel, balancer) = Channel::balance_channel(BALANCER_QUEUE);
        let (events, inbox) = mpsc::unbounded_channel();
        let timeout = settings.timeout;
        let discovery = Discovery::new(service, targets.clone(), settings, balancer, &events);
        tokio::spawn(discovery.run(inbox));
        Self {
            shared: Arc::new(Shared {
                channel,
                events,
                timeout,
            }),
        }
    }

    /// The balanced channel itself, with no second tries: for streams, and for health checks.
    pub fn channel(&self) -> Channel {
        self.shared.channel.clone()
    }

    /// Resolves once the replicas in the balancer have been checked and those that do not
    /// answer taken out.
    async fn recheck(&self) {
        let (done, checked) = oneshot::channel();
        if self.shared.events.send(Event::Recheck(done)).is_ok() {
            let _ = checked.await;
        }
    }
}

impl Service<http::Request<Body>> for Upstream {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    /// Always ready: each call waits for the balancer itself.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let upstream = self.clone();
        let call =
            crate::metrics::enabled().then(|| Call::start(Side::Client, request.uri().path()));
        // Exported traces: the call is a client span of the caller's, and the replica that
        // answers continues it.
        let span = if telemetry::context::enabled() {
            let method = request.uri().path().trim_start_matches('/');
            let span = tracing::info_span!(
                "grpc.client",
                otel.name = %method,
                otel.kind = "client",
                rpc.system = "grpc",
            );
            telemetry::context::inject(&span, request.headers_mut());
            span
        } else {
            tracing::Span::none()
        };
        let sent = async move {
            let answer = upstream.send(request).await.map_err(resend::unreachable);
            match (call, answer) {
                (None, answer) => answer,
                (Some(call), Ok(response)) => Ok(call.answered(response)),
                (Some(call), Err(error)) => {
                    call.failed(error.as_ref());
                    Err(error)
                }
            }
        };
        Box::pin(sent.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    use super::*;

    const SERVICE: &str = "test.v1.Service";

    fn settings() -> Settings {
        Settings {
            resolve_interval: Duration::from_secs(5),
            // Long: a call that waited for a replica instead of failing would hang the test.
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(1),
            tls: None,
        }
    }

    /// A replica that serves health alone, SERVING for [`SERVICE`], on a runtime of its own.
    struct Replica {
        url: String,
        kill: oneshot::Sender<()>,
        thread: std::thread::JoinHandle<()>,
    }

    impl Replica {
        fn start() -> Self {
            let (kill, killed) = oneshot::channel::<()>();
            let (bound, url) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.spawn(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let url = format!("http://{}", listener.local_addr().unwrap());
                    let (reporter, health) = tonic_health::server::health_reporter();
                    reporter
                        .set_service_status(SERVICE, tonic_health::ServingStatus::Serving)
                        .await;
                    bound.send(url).unwrap();
                    let incoming = tonic::transport::server::TcpIncoming::from(listener);
                    let served = tonic::transport::Server::builder()
                        .add_service(health)
                        .serve_with_incoming(incoming)
                        .await;
                    drop((served, reporter));
                });
                runtime.block_on(async {
                    let _ = killed.await;
                });
                // Dropping the runtime drops every task: the listener and each connection.
            });
            Self {
                url: url.recv().unwrap(),
                kill,
                thread,
            }
        }

        /// Gone with no goodbye: its sockets closed, as the kernel closes a killed process's.
        fn kill(self) {
            let _ = self.kill.send(());
            self.thread.join().unwrap();
        }
    }

    async fn check(upstream: &Upstream) -> Result<ServingStatus, tonic::Code> {
        let request = HealthCheckRequest {
            service: SERVICE.to_owned(),
        };
        match HealthClient::new(upstream.clone()).check(request).await {
            Ok(response) => Ok(response.into_inner().status()),
            Err(status) => Err(status.code()),
        }
    }

    #[test]
    fn https_targets_need_a_ca_to_verify_against() {
        let https: Targets = "https://auth:50051".parse().unwrap();
        let http: Targets = "http://auth:50051".parse().unwrap();
        let refused = check_tls("AUTH_URL", &https, None).unwrap_err();
        assert_eq!(refused.name, "AUTH_URL");
        assert!(refused.reason.contains("TLS_CA_FILE"), "{refused:?}");
        let tls = ClientTls::from_pem("a CA", None);
        assert!(check_tls("AUTH_URL", &https, Some(&tls)).is_ok());
        assert!(check_tls("AUTH_URL", &http, None).is_ok());
    }

    #[tokio::test]
    async fn a_call_fails_at_once_when_no_replica_answers() {
        let replica = Replica::start();
        let targets = replica.url.parse().unwrap();
        replica.kill();
        let upstream = Upstream::spawn(SERVICE, &targets, settings());
        assert_eq!(check(&upstream).await, Err(tonic::Code::Unavailable));
    }

    #[tokio::test]
    async fn a_name_stands_for_the_addresses_it_resolves_to() {
        let replica = Replica::start();
        let port = replica.url.rsplit(':').next().unwrap();
        // `localhost` may resolve to ::1 too, where nothing listens: that address stays out.
        let targets = format!("http://localhost:{port}").parse().unwrap();
        let upstream = Upstream::spawn(SERVICE, &targets, settings());
        for _ in 0..10 {
            assert_eq!(check(&upstream).await, Ok(ServingStatus::Serving));
        }
        replica.kill();
    }

    #[tokio::test]
    async fn reads_spread_over_the_replicas_and_outlive_a_killed_one() {
        let (first, second) = (Replica::start(), Replica::start());
        let targets: Targets = format!("{},{}", first.url, second.url).parse().unwrap();
        let upstream = Upstream::spawn(SERVICE, &targets, settings());
        for _ in 0..20 {
            assert_eq!(check(&upstream).await, Ok(ServingStatus::Serving));
        }
        first.kill();
        for _ in 0..50 {
            assert_eq!(check(&upstream).await, Ok(ServingStatus::Serving));
        }
    }
}
