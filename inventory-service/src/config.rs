//! The service's settings, read from the environment (names as in `API.md`) and checked before
//! any socket opens; the database URL is checked by connecting to it.

use std::{net::SocketAddr, time::Duration};

use http::Uri;

use service_kit::{
    database::DatabaseUrl,
    env::{self, ConfigError},
    grpc, program,
    telemetry::LogFormat,
    tls::{ClientTls, ServerTls},
    upstream::{self, Targets},
};

#[derive(Debug, Clone)]
pub struct Config {
    /// `INVENTORY_LISTEN`: where the gRPC server listens (port 0 picks a free port).
    pub listen: SocketAddr,
    /// `INVENTORY_DATABASE_URL`: `sqlite://…` (created if missing) or `postgres://…`.
    pub database_url: DatabaseUrl,
    /// `AUTH_URL`: the auth service that validates every caller's credentials: one
    /// `http://host:port` or several, comma-separated; a name stands for every address it
    /// resolves to (each auth replica).
    pub auth_url: Targets,
    /// `TLS_CA_FILE` (and `TLS_CLIENT_CERT_FILE`, `TLS_CLIENT_KEY_FILE`): what an `https://`
    /// `AUTH_URL` is verified against (and the certificate presented to it).
    pub auth_tls: Option<ClientTls>,
    /// `RESOLVE_INTERVAL_MS`: how often the names in `AUTH_URL` are looked up again, so that
    /// replicas added or removed are found.
    pub resolve_interval: Duration,
    /// `AUTH_TIMEOUT_MS`: how long one credential check may take before the call is answered
    /// UNAVAILABLE; a slow auth must not hold callers indefinitely.
    pub auth_timeout: Duration,
    /// `AUTH_HEALTH_INTERVAL_MS`: how often auth's health is polled to report this service
    /// NOT_SERVING while auth is unreachable.
    pub auth_health_interval: Duration,
    /// `TLS_CERT_FILE` and `TLS_KEY_FILE` (and `TLS_CLIENT_CA_FILE`): the server then speaks
    /// TLS only (and requires client certificates from that CA).
    pub tls: Option<ServerTls>,
    /// `METRICS_LISTEN`, default none: where `GET /metrics` (Prometheus) is served.
    pub metrics_listen: Option<SocketAddr>,
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
    /// `SHUTDOWN_GRACE_MS` and `DRAIN_TIMEOUT_MS`: how the replica leaves on SIGTERM.
    pub hand_over: grpc::HandOver,
    /// `PRODUCT_CACHE_LEASE_MS` (0: no cache) and `PRODUCT_CACHE_MAX_PRODUCTS`: the copy of the
    /// product table reads are answered from ([`crate::cache`]).
    pub product_cache: CacheSettings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let auth_url = env::parse_or("AUTH_URL", "http://127.0.0.1:50051")?;
        let auth_tls = ClientTls::from_env()?;
        upstream::check_tls("AUTH_URL", &auth_url, auth_tls.as_ref())?;
        Ok(Self {
            listen: env::parse_or("INVENTORY_LISTEN", "127.0.0.1:50052")?,
            database_url: env::string_or("INVENTORY_DATABASE_URL", "sqlite://inventory.db").into(),
            auth_url,
            auth_tls,
            resolve_interval: upstream::resolve_interval_from_env()?,
            auth_timeout: millis("AUTH_TIMEOUT_MS", "2000")?,
            auth_health_interval: millis("AUTH_HEALTH_INTERVAL_MS", "2000")?,
            tls: ServerTls::from_env()?,
            metrics_listen: service_kit::metrics::listen_from_env()?,
            reflection: env::switch_or("GRPC_REFLECTION", true)?,
            log_format: env::parse_or("LOG_FORMAT", "plain")?,
            grpc: grpc::Limits::from_env()?,
            idempotency_key_ttl: service_kit::idempotency::key_ttl_from_env()?,
            hand_over: grpc::HandOver::from_env()?,
            product_cache: CacheSettings {
                lease: Duration::from_millis(u64::from(env::parse_or::<u32>(
                    "PRODUCT_CACHE_LEASE_MS",
                    "3000",
                )?)),
                max_products: env::parse_or("PRODUCT_CACHE_MAX_PRODUCTS", "10000")?,
            },
        })
    }

    /// Port 0, reflection on, auth polled often (so tests see health changes quickly).
    pub fn for_tests(database_url: &str, auth_url: Uri) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            auth_url: auth_url.to_string().parse().expect("an http:// URL"),
            auth_tls: None,
            resolve_interval: Duration::from_secs(5),
            auth_timeout: Duration::from_secs(2),
            auth_health_interval: Duration::from_millis(100),
            tls: None,
            metrics_listen: None,
            reflection: true,
            log_format: LogFormat::Plain,
            grpc: grpc::Limits::default(),
            idempotency_key_ttl: Duration::from_secs(86400),
            hand_over: grpc::HandOver::default(),
            product_cache: CacheSettings {
                lease: Duration::from_millis(3000),
                max_products: 10_000,
            },
        }
    }
}

/// What [`program::main`] reads: [`Config::from_env`]'s settings, and the log format they name.
impl program::FromEnv for Config {
    fn from_env() -> Result<Self, ConfigError> {
        Config::from_env()
    }

    fn log_format(&self) -> LogFormat {
        self.log_format
    }
}

/// How the product cache is set up ([`Config::product_cache`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// How long a replica may serve its copy without hearing the feed (PostgreSQL) or looking
    /// at the file (SQLite), and so how long a write waits at most for a replica that stopped
    /// answering. Zero: no cache.
    pub lease: Duration,
    /// More products than this and none are kept.
    pub max_products: usize,
}

/// A positive number of milliseconds.
fn millis(name: &'static str, default: &str) -> Result<Duration, ConfigError> {
    match env::parse_or::<u64>(name, default)? {
        0 => Err(ConfigError::new(name, "0", "must be at least 1")),
        ms => Ok(Duration::from_millis(ms)),
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    /// The settings `from_env` reads are the rows of docs/API.md's configuration table that name
    /// this program, with their defaults; `--help` lists the same.
    #[test]
    fn every_setting_read_is_documented_and_every_documented_one_read() {
        service_kit::testing::settings::assert_documented("inventory", Config::from_env, &[]);
    }
}
