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
use service_kit::{
    listener::{self, BindError},
    program::{Server, Stop},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

use crate::{
    clients::Upstreams,
    config::Config,
    connections, cors,
    error::ApiError,
    extract::BODY_LIMIT,
    forwarded::{self, Proxies},
    hosts,
    metrics::{self, Metrics},
    request_log, routes,
    throttle::Throttle,
};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Bind(#[from] BindError),
}

/// The router with every layer, as connections are served it.
type App = NormalizePath<Router>;

/// A bound, ready-to-run gateway.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    app: App,
    connections: connections::Limits,
    verdicts: service_kit::verdicts::VerdictCache,
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
        let (listener, local_addr) = listener::bind(config.listen).await?;
        let metrics = Arc::new(Metrics::default());
        let throttle = Arc::new(Throttle::new(config.auth_rate));
        let upstreams = Upstreams::connect_lazy(&config);
        let verdicts = upstreams.verdicts().clone();
        let proxies = Proxies {
            trusted: config.trusted_proxies,
            count: config.num_proxies,
            always_secure: config.session_cookie_secure,
        };
        let origins = Arc::new(config.csrf_trusted_origins);
        // Every layer that wraps the whole router, here; the throttle, which wraps only the
        // routes that check a password, is `routes::router`'s. Outermost last: CORS answers
        // preflights inside the `Host` check but before any route, the request id wraps
        // everything (so even a 413 or a 404 carries it), and the client is known before it.
        let router = routes::router(upstreams, metrics.clone(), throttle, origins).layer(
            middleware::from_fn_with_state(config.request_timeout, request_deadline),
        );
        let router = cors::wrap(router, config.cors_allowed_origins)
            .layer(middleware::from_fn_with_state(
                Arc::new(config.allowed_hosts),
                hosts::check,
            ))
            .layer(middleware::from_fn_with_state(metrics, metrics::record))
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
        connections::serve(self.listener, self.app, self.connections, shutdown).await;
        Ok(())
    }
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
/// image has no curl.
pub async fn probe_health(listen: SocketAddr, host: &str) -> Result<(), String> {
    let mut target = listen;
    if target.ip().is_unspecified() {
        target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let exchange = async {
        let mut stream = TcpStream::connect(target).await?;
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, io::Error>(response)
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
