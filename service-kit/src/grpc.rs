//! The services every server mounts beside its own: reflection (v1 and v1alpha, so every grpcurl
//! can list and call) and `grpc.health.v1.Health`, plus the serve loop itself, the [`Limits`] it
//! enforces on every caller, the [`HandOver`] by which a replica leaves without failing a call,
//! [`Bound`], a server that holds all of these, ready to serve, and the [`StartupError`] of
//! every gRPC service. A server given a [`ServerTls`] speaks TLS only.

mod bound;
mod startup;

pub use bound::Bound;
pub use startup::StartupError;

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio::net::TcpListener;
use tonic::{
    Code, Status,
    service::{Routes, RoutesBuilder},
    transport::{Endpoint, Server, server::TcpIncoming},
};
use tonic_health::{
    pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient},
    server::HealthReporter,
};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    env::{self, ConfigError},
    metrics::GrpcMetricsLayer,
    request_id::RequestIdLayer,
    tls::ServerTls,
};

/// A refusal clients can branch on: `reason` and `domain` ride in a `google.rpc.ErrorInfo`
/// detail, so no client has to match on `message`, which is for people.
pub fn with_reason(code: Code, message: impl Into<String>, reason: &str, domain: &str) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, domain, []),
    )
}

/// What a server allows each caller, so that no client (a buggy one, or one that means harm)
/// can hold a call, a connection or memory without bound. Read from the environment by
/// [`Limits::from_env`]; [`Limits::default`] is the same defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `GRPC_REQUEST_TIMEOUT_MS`: a call not answered by then is CANCELLED ("Timeout
    /// expired"); a shorter `grpc-timeout` from the client wins.
    pub request_timeout: Duration,
    /// `GRPC_CONCURRENCY_LIMIT`: calls served at once on one connection; more wait their turn.
    /// The gateway sends all its calls over one connection, hence a generous default.
    pub concurrency_per_connection: usize,
    /// `GRPC_MAX_CONCURRENT_STREAMS`: streams a client may open at once on one connection,
    /// advertised in HTTP/2 SETTINGS (clients queue beyond it).
    pub max_concurrent_streams: u32,
    /// `GRPC_KEEPALIVE_INTERVAL_MS`: how often an idle connection is pinged, so a peer that
    /// vanished without closing (a dead host, a dropped NAT entry) is noticed.
    pub keepalive_interval: Duration,
    /// `GRPC_KEEPALIVE_TIMEOUT_MS`: how long a ping may go unanswered before the connection is
    /// closed.
    pub keepalive_timeout: Duration,
    /// `GRPC_MAX_REQUEST_BYTES`: the largest request message decoded; a larger one is
    /// OUT_OF_RANGE before it is buffered whole. The gateway's body limit (1 MiB) by default.
    pub max_request_bytes: usize,
    /// `GRPC_MAX_RESPONSE_BYTES`: the largest response message encoded; 4 MiB by default, what
    /// tonic clients (the gateway among them) accept.
    pub max_response_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            concurrency_per_connection: 256,
            max_concurrent_streams: 256,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Every limit from its variable, with [`Limits::default`]'s values as the defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            request_timeout: env::millis_or("GRPC_REQUEST_TIMEOUT_MS", "30000")?,
            concurrency_per_connection: positive("GRPC_CONCURRENCY_LIMIT", "256")?,
            max_concurrent_streams: positive("GRPC_MAX_CONCURRENT_STREAMS", "256")?,
            keepalive_interval: env::millis_or("GRPC_KEEPALIVE_INTERVAL_MS", "30000")?,
            keepalive_timeout: env::millis_or("GRPC_KEEPALIVE_TIMEOUT_MS", "10000")?,
            max_request_bytes: positive("GRPC_MAX_REQUEST_BYTES", "1048576")?,
            max_response_bytes: positive("GRPC_MAX_RESPONSE_BYTES", "4194304")?,
        })
    }
}

/// How a replica leaves on SIGTERM without failing a call: it reports NOT_SERVING (the clients'
/// balancers, watching its health, stop sending it calls), serves on for the grace so that every
/// client has heard, then stops taking calls and gives those in flight until the drain deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandOver {
    /// `SHUTDOWN_GRACE_MS`: how long a leaving replica still serves while it reports
    /// NOT_SERVING. Clients of this workspace hear at once; one that polls health needs a
    /// grace longer than its polling interval.
    pub grace: Duration,
    /// `DRAIN_TIMEOUT_MS`: how long the calls in flight then have to finish before the server
    /// stops waiting for them; they are cut when the process exits (auth first waits out the
    /// verdict-cache leases it granted, and its connections serve on meanwhile).
    pub drain_timeout: Duration,
}

impl Default for HandOver {
    fn default() -> Self {
        Self {
            grace: Duration::from_millis(1000),
            drain_timeout: Duration::from_millis(10_000),
        }
    }
}

impl HandOver {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            grace: Duration::from_millis(env::parse_or("SHUTDOWN_GRACE_MS", "1000")?),
            drain_timeout: env::millis_or("DRAIN_TIMEOUT_MS", "10000")?,
        })
    }

    /// Reports `services` NOT_SERVING, waits out the grace, then ends their health watches
    /// (streams that never end by themselves would hold the drain). Afterwards the server
    /// should stop taking calls: await this in the `shutdown` future given to [`serve`].
    pub async fn leave(self, reporter: &mut HealthReporter, services: &[&str]) {
        for service in services {
            reporter
                .set_service_status(*service, tonic_health::ServingStatus::NotServing)
                .await;
        }
        tracing::info!(
            grace_ms = self.grace.as_millis(),
            "reported NOT_SERVING; serving out the grace"
        );
        tokio::time::sleep(self.grace).await;
        for service in services {
            reporter.clear_service_status(service).await;
        }
    }
}

/// A number of at least 1.
fn positive<T>(name: &'static str, default: &str) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
    T::Err: std::fmt::Display,
{
    let value: T = env::parse_or(name, default)?;
    if value < T::from(1) {
        return Err(ConfigError::new(name, "0", "must be at least 1"));
    }
    Ok(value)
}

/// Sets [`Limits`]' message sizes on a generated `…Server` (each has the two methods, but
/// under no common trait): `with_message_limits!(AuthServiceServer::new(api), limits)`.
#[macro_export]
macro_rules! with_message_limits {
    ($server:expr, $limits:expr) => {{
        let limits: &$crate::grpc::Limits = &$limits;
        $server
            .max_decoding_message_size(limits.max_request_bytes)
            .max_encoding_message_size(limits.max_response_bytes)
    }};
}

/// A service whose calls run to their end even when their caller goes away. tonic drops a
/// call's future when its client resets the stream or its deadline passes; a write dropped
/// between its commit and what must follow it (auth publishing a revocation to the verdict
/// caches) would leave the two apart. Each call runs as a task of its own instead, and the
/// caller only stops waiting for it.
#[derive(Debug, Clone)]
pub struct RunToEnd<S>(pub S);

impl<S: tonic::server::NamedService> tonic::server::NamedService for RunToEnd<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, Request> tower::Service<Request> for RunToEnd<S>
where
    S: tower::Service<Request>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send + 'static>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let call = tokio::spawn(self.0.call(request));
        Box::pin(async move {
            match call.await {
                Ok(answer) => answer,
                // The call panicked: answer as its dropped future would have.
                Err(failed) => std::panic::resume_unwind(failed.into_panic()),
            }
        })
    }
}

const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// Adds both reflection versions. They describe the workspace contracts, health, and the
/// `google.rpc` error details (so grpcurl can print a `BadRequest` or `ErrorInfo`), and list
/// only the services this server really mounts: `service` besides health and reflection.
pub fn add_reflection(
    routes: &mut RoutesBuilder,
    service: &str,
) -> Result<(), tonic_reflection::server::Error> {
    let builder = |reflection: &str| {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(service)
            .with_service_name(HEALTH)
            .with_service_name(reflection)
    };
    routes.add_service(builder(REFLECTION_V1).build_v1()?);
    routes.add_service(builder(REFLECTION_V1ALPHA).build_v1alpha()?);
    Ok(())
}

/// Serves `routes` on `listener` within `limits` until `shutdown` resolves, then takes no new
/// calls and lets those in flight finish, for `drain_timeout` at most; over TLS only when given
/// `tls`, and counting every call ([`GrpcMetricsLayer`]) when `metrics` (a server nobody
/// scrapes pays nothing for them). (The message sizes are set on each generated server, with
/// [`with_message_limits!`].)
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    limits: Limits,
    tls: Option<&ServerTls>,
    metrics: bool,
    drain_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    if metrics {
        crate::metrics::install();
    }
    let (draining, drain_started) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = draining.send(());
    };
    let deadline = async move {
        if drain_started.await.is_ok() {
            tokio::time::sleep(drain_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls.config())?;
    }
    let server = builder
        .timeout(limits.request_timeout)
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout))
        .layer(RequestIdLayer)
        .layer(tower::util::option_layer(
            metrics.then_some(GrpcMetricsLayer),
        ))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        );
    tokio::select! {
        served = server => served,
        () = deadline => {
            tracing::warn!(
                drain_timeout_ms = drain_timeout.as_millis(),
                "calls still in flight at the drain deadline are cut"
            );
            Ok(())
        }
    }
}

/// Asks the server listening on `listen` (this host) whether `service` is SERVING: what a
/// container's health check runs, since the runtime image has no shell or probe tool. A server
/// given `tls` is asked over TLS, trusting its own certificate.
pub async fn probe_health(
    listen: SocketAddr,
    service: &str,
    tls: Option<&ServerTls>,
) -> Result<(), String> {
    let mut target = listen;
    if target.ip().is_unspecified() {
        target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let endpoint = Endpoint::from_shared(format!("http://{target}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2));
    let connected = match tls {
        None => endpoint.connect().await,
        Some(tls) => {
            let mut config = tls.probe_client_config()?;
            config.alpn_protocols = vec![b"h2".to_vec()];
            let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
            let name = rustls::pki_types::ServerName::IpAddress(target.ip().into());
            let connect = tower::service_fn(move |_: http::Uri| {
                let (connector, name) = (connector.clone(), name.clone());
                async move {
                    let tcp = tokio::net::TcpStream::connect(target).await?;
                    let tls = connector.connect(name, tcp).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
                }
            });
            endpoint.connect_with_connector(connect).await
        }
    };
    let channel = connected.map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map_err(|status| format!("health check failed: {}", status.message()))?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        status => Err(format!("{service} is {}", status.as_str_name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream limit reaches clients in the server's HTTP/2 SETTINGS, where they obey it.
    #[tokio::test]
    async fn advertises_the_stream_limit_in_http2_settings() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health);
        let limits = Limits {
            max_concurrent_streams: 3,
            ..Limits::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            serve(
                listener,
                routes.routes(),
                limits,
                None,
                false,
                Duration::from_secs(5),
                shutdown,
            )
            .await
        });

        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        let mut client = client.ready().await.unwrap();
        let request = http::Request::post(format!("http://{addr}/{HEALTH}/Check"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        // Any answer will do: by then the server's SETTINGS have been read.
        let (response, _) = client.send_request(request, true).unwrap();
        response.await.unwrap();
        assert_eq!(client.current_max_send_streams(), 3);

        drop(stop);
        server.await.unwrap().unwrap();
    }

    #[test]
    fn the_defaults_are_those_from_env_reads() {
        // No test sets these variables: reading them gives the documented defaults.
        assert_eq!(Limits::from_env().unwrap(), Limits::default());
        assert_eq!(HandOver::from_env().unwrap(), HandOver::default());
    }

    #[tokio::test]
    async fn a_call_runs_to_its_end_when_its_caller_goes_away() {
        use std::sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        };
        use tower::Service as _;
        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let slow = tower::service_fn(move |(): ()| {
            let flag = flag.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                flag.store(true, Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>(())
            }
        });
        let mut service = RunToEnd(slow);
        let call = service.call(());
        // The caller gives up long before the call would end.
        let gave_up = tokio::time::timeout(Duration::from_millis(5), call).await;
        assert!(gave_up.is_err());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            finished.load(Ordering::SeqCst),
            "the call ran on to its end"
        );
    }
}
