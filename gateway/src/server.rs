//! Building and running the gateway: [`Server::build`] binds the listener first (so tests
//! can use port 0 and read the port back) and assembles the router with its middleware;
//! [`Server::run_until_stopped`] serves (through [`crate::connections`], with its timers and
//! connection caps) until the shutdown future resolves, then lets in-flight requests finish.

use std::{io, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use rustls::pki_types::ServerName;
use service_kit::{
    listener::{self, BindError},
    program::{Server, Stop},
    tls::ServerTls,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

use crate::{
    clients::Upstreams,
    config::Config,
    connections, cors,
    error::ApiError,
    extract::BODY_LIMIT,
    forwarded::{self, Proxies},
    hosts, metrics, request_log, routes,
    throttle::Throttle,
};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot serve HTTPS with TLS_CERT_FILE and TLS_KEY_FILE: {0}")]
    Tls(String),
}

/// The router with every layer, as connections are served it.
type App = NormalizePath<Router>;

/// A bound, ready-to-run gateway.
pub struct Application {
    listener: TcpListener,
    /// HTTPS, when the gateway was given a certificate.
    tls: Option<TlsAcceptor>,
    local_addr: SocketAddr,
    app: App,
    connections: connections::Limits,
    verdicts: service_kit::verdicts::VerdictCache,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("local_addr", &self.local_addr)
            .field("https", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Application {
    /// The cache of auth's verdicts on the sessions the gateway checks.
    pub fn verdicts(&self) -> service_kit::verdicts::VerdictCache {
        self.verdicts.clone()
    }
}

impl Server for Application {
    type Settings = Config;
    type Error = StartupError;

    /// Binds `config.listen` and builds the router. The services need not be up: their
    /// channels connect on first use.
    async fn build(config: Config) -> Result<Self, StartupError> {
        let tls = config.tls.as_ref().map(acceptor).transpose()?;
        let (listener, local_addr) = listener::bind(config.listen).await?;
        // Before the clients, whose calls and caches it counts.
        metrics::install();
        let throttle = Arc::new(Throttle::new(config.auth_rate));
        let upstreams = Upstreams::connect_lazy(&config);
        let verdicts = upstreams.verdicts().clone();
        let proxies = Proxies {
            trusted: config.trusted_proxies,
            count: config.num_proxies,
            // Served over HTTPS, every request is secure (cookies, links).
            always_secure: config.session_cookie_secure || tls.is_some(),
        };
        let origins = Arc::new(config.csrf_trusted_origins);
        // Every layer that wraps the whole router, here; the throttle, which wraps only the
        // routes that check a password, is `routes::router`'s. Outermost last: CORS answers
        // preflights inside the `Host` check but before any route, the request id wraps
        // everything (so even a 413 or a 404 carries it), and the client is known before it.
        let router = routes::router(upstreams, throttle, origins).layer(
            middleware::from_fn_with_state(config.request_timeout, request_deadline),
        );
        let router = cors::wrap(router, config.cors_allowed_origins)
            .layer(middleware::from_fn_with_state(
                Arc::new(config.allowed_hosts),
                hosts::check,
            ))
            .layer(middleware::from_fn(metrics::record))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(middleware::from_fn(request_log::record))
            .layer(middleware::from_fn_with_state(
                Arc::new(proxies),
                forwarded::identify,
            ));
        // Outside the router, so that both spellings of a path reach the same route (and the
        // same metrics label): `/api/login` is served as `/api/login/`, the query kept.
        let app = NormalizePathLayer::append_trailing_slash().layer(router);
        Ok(Self {
            listener,
            tls,
            local_addr,
            app,
            connections: config.connections,
            verdicts,
        })
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Drains the requests in flight when `shutdown` resolves.
    async fn run_until_stopped(self, shutdown: impl Stop) -> Result<(), StartupError> {
        tracing::info!(address = %self.local_addr, "gateway listening");
        connections::serve(
            self.listener,
            self.tls,
            self.app,
            self.connections,
            shutdown,
        )
        .await;
        Ok(())
    }
}

/// The TLS acceptor of HTTPS: HTTP/2 offered first, HTTP/1.1 beside it.
fn acceptor(tls: &ServerTls) -> Result<TlsAcceptor, StartupError> {
    let mut config = tls.server_config().map_err(StartupError::Tls)?;
    config.alpn_protocols = connections::ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Answers 504 for a request still unanswered after `timeout` (reading its body included), so
/// that a slow client or a slow path cannot hold a connection and a task for long.
async fn request_deadline(
    State(timeout): State<std::time::Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_elapsed) => ApiError::Timeout.into_response(),
    }
}

/// Asks the gateway listening on `listen` (this host) for `GET /healthz` with `Host: host`
/// (one `ALLOWED_HOSTS` lets through): what a container's health check runs, since the runtime
/// image has no curl. Over HTTPS when the gateway serves it (`tls`), trusting the gateway's own
/// certificate.
pub async fn probe_health(
    listen: SocketAddr,
    host: &str,
    tls: Option<&ServerTls>,
) -> Result<(), String> {
    let mut target = listen;
    if target.ip().is_unspecified() {
        target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let connector = match tls {
        Some(tls) => Some(TlsConnector::from(Arc::new(tls.probe_client_config()?))),
        None => None,
    };
    let exchange = async {
        let stream = TcpStream::connect(target).await?;
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        match connector {
            Some(connector) => {
                let name = ServerName::IpAddress(target.ip().into());
                exchange(connector.connect(name, stream).await?, &request).await
            }
            None => exchange(stream, &request).await,
        }
    };
    let response = tokio::time::timeout(std::time::Duration::from_secs(2), exchange)
        .await
        .map_err(|_| format!("{target} did not answer in time"))?
        .map_err(|e| format!("cannot reach {target}: {e}"))?;
    if response.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        let status_line = response.split(|b| *b == b'\r').next().unwrap_or_default();
        Err(format!(
            "unhealthy: {}",
            String::from_utf8_lossy(status_line)
        ))
    }
}

/// Sends `request` on `stream` and reads the answer to its end.
async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &str,
) -> io::Result<Vec<u8>> {
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    Ok(response)
}
