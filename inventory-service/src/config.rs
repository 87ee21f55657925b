//! The service's settings, read from the environment (names as in `API.md`) and checked before
//! any socket opens; the database URL is checked by connecting to it.

use std::{net::SocketAddr, time::Duration};

use http::Uri;
use service_kit::{
    database::DatabaseUrl,
    env::{self, ConfigError},
    grpc,
    telemetry::LogFormat,
};

#[derive(Debug, Clone)]
pub struct Config {
    /// `INVENTORY_LISTEN`: where the gRPC server listens (port 0 picks a free port).
    pub listen: SocketAddr,
    /// `INVENTORY_DATABASE_URL`: `sqlite://…` (created if missing) or `postgres://…`.
    pub database_url: DatabaseUrl,
    /// `AUTH_URL`: the auth service that validates every caller's credentials.
    pub auth_url: Uri,
    /// `AUTH_TIMEOUT_MS`: how long one credential check may take before the call is answered
    /// UNAVAILABLE; a slow auth must not hold callers indefinitely.
    pub auth_timeout: Duration,
    /// `AUTH_HEALTH_INTERVAL_MS`: how often auth's health is polled to report this service
    /// NOT_SERVING while auth is unreachable.
    pub auth_health_interval: Duration,
    /// `GRPC_REFLECTION`: `off` hides the schema from clients.
    pub reflection: bool,
    /// `LOG_FORMAT`: `plain` or `json`.
    pub log_format: LogFormat,
    /// The `GRPC_*` limits on every caller: deadline, concurrency, streams, keepalive and
    /// message sizes.
    pub grpc: grpc::Limits,
    /// `IDEMPOTENCY_KEY_TTL_SECONDS`: how long a write's idempotency key and its answer are
    /// kept ([`service_kit::idempotency::key_ttl_from_env`]).
    pub idempotency_key_ttl: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: env::parse_or("INVENTORY_LISTEN", "127.0.0.1:50052")?,
            database_url: env::string_or("INVENTORY_DATABASE_URL", "sqlite://inventory.db").into(),
            auth_url: auth_url()?,
            auth_timeout: millis("AUTH_TIMEOUT_MS", "2000")?,
            auth_health_interval: millis("AUTH_HEALTH_INTERVAL_MS", "2000")?,
            reflection: env::switch_or("GRPC_REFLECTION", true)?,
            log_format: env::parse_or("LOG_FORMAT", "plain")?,
            grpc: grpc::Limits::from_env()?,
            idempotency_key_ttl: service_kit::idempotency::key_ttl_from_env()?,
        })
    }

    /// Port 0, reflection on, auth polled often (so tests see health changes quickly).
    pub fn for_tests(database_url: &str, auth_url: Uri) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            auth_url,
            auth_timeout: Duration::from_secs(2),
            auth_health_interval: Duration::from_millis(100),
            reflection: true,
            log_format: LogFormat::Plain,
            grpc: grpc::Limits::default(),
            idempotency_key_ttl: Duration::from_secs(86400),
        }
    }
}

/// `AUTH_URL`: `http://host:port`. A bare `localhost:50051` would parse, and then fail on every
/// call instead of at start-up; `https` would need TLS, which this build does not include.
fn auth_url() -> Result<Uri, ConfigError> {
    const NAME: &str = "AUTH_URL";
    let url: Uri = env::parse_or(NAME, "http://127.0.0.1:50051")?;
    match (url.scheme_str(), url.host()) {
        (Some("http"), Some(_)) => Ok(url),
        _ => Err(ConfigError::new(
            NAME,
            url.to_string(),
            "expected http://host:port",
        )),
    }
}

/// A positive number of milliseconds.
fn millis(name: &'static str, default: &str) -> Result<Duration, ConfigError> {
    match env::parse_or::<u64>(name, default)? {
        0 => Err(ConfigError::new(name, "0", "must be at least 1")),
        ms => Ok(Duration::from_millis(ms)),
    }
}
