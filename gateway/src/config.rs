//! The gateway's settings: read from the environment under the names API.md fixes, typed and
//! checked before any socket opens, so a bad value stops start-up with a message naming it.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use crate::{
    connections::Limits,
    forwarded::{ProxyCount, TrustedProxies},
    hosts::AllowedHosts,
    origins::TrustedOrigins,
};
use service_kit::{
    env::{self, ConfigError},
    program,
    telemetry::LogFormat,
    tls,
    upstream::{self, Targets},
};

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP API listens (`GATEWAY_LISTEN`). Port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// HTTPS (`TLS_CERT_FILE`, `TLS_KEY_FILE`, and `TLS_CLIENT_CA_FILE` to require client
    /// certificates), HTTP/2 offered beside HTTP/1.1; default none: plain HTTP.
    pub tls: Option<tls::ServerTls>,
    /// The auth service's replicas (`AUTH_URL`): one `http://host:port` or several,
    /// comma-separated; a name stands for every address it resolves to.
    pub auth_url: Targets,
    /// The inventory service's replicas (`INVENTORY_URL`), as `auth_url`.
    pub inventory_url: Targets,
    /// What `https://` upstreams are verified against, and the certificate presented to them
    /// (`TLS_CA_FILE`, `TLS_CLIENT_CERT_FILE`, `TLS_CLIENT_KEY_FILE`).
    pub upstream_tls: Option<tls::ClientTls>,
    /// How often the names in both are looked up again (`RESOLVE_INTERVAL_MS`).
    pub resolve_interval: Duration,
    /// Per-client-IP limit on the login and registration routes (`THROTTLE_AUTH_RATE`);
    /// `None` when switched off.
    pub auth_rate: Option<Rate>,
    /// The `Host` names the gateway answers for (`ALLOWED_HOSTS`); any other is a 400.
    pub allowed_hosts: AllowedHosts,
    /// Plain or JSON log lines (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// How long one gRPC call may take before the client gets a 504. Not part of the contract,
    /// so not read from the environment.
    pub upstream_timeout: Duration,
    /// How long a request may take from its head being read to its answer, body reading
    /// included, before the client gets a 504 (`GATEWAY_REQUEST_TIMEOUT_MS`).
    pub request_timeout: Duration,
    /// The header and idle timers and the caps on open connections, in all and per client
    /// address (`GATEWAY_HEADER_TIMEOUT_MS`, `GATEWAY_IDLE_TIMEOUT_MS`,
    /// `GATEWAY_MAX_CONNECTIONS`, `GATEWAY_MAX_CONNECTIONS_PER_CLIENT`).
    pub connections: Limits,
    /// Whether the session and CSRF cookies are `Secure` (`SESSION_COOKIE_SECURE`, default off
    /// so that plain-HTTP localhost works).
    pub session_cookie_secure: bool,
    /// The origins besides the gateway's own that may open a session (`CSRF_TRUSTED_ORIGINS`,
    /// Django's format, default none).
    pub csrf_trusted_origins: TrustedOrigins,
    /// The proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed
    /// (`TRUSTED_PROXIES`, default none).
    pub trusted_proxies: TrustedProxies,
    /// How many proxies stand in front (`NUM_PROXIES`, DRF's setting, default unset): the
    /// client is the `X-Forwarded-For` entry that many from the right.
    pub num_proxies: ProxyCount,
    /// The browser origins that may call the API from their pages (`CORS_ALLOWED_ORIGINS`,
    /// default none: no CORS headers at all).
    pub cors_allowed_origins: TrustedOrigins,
}

/// `ALLOWED_HOSTS` by default: this machine, by name and by loopback address.
const DEFAULT_ALLOWED_HOSTS: &str = "localhost,127.0.0.1,[::1]";

/// The default deadline of one gRPC call.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

impl Config {
    /// Reads every setting, with API.md's defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        let auth_url = env::parse_or("AUTH_URL", "http://127.0.0.1:50051")?;
        let inventory_url = env::parse_or("INVENTORY_URL", "http://127.0.0.1:50052")?;
        let upstream_tls = tls::ClientTls::from_env()?;
        upstream::check_tls("AUTH_URL", &auth_url, upstream_tls.as_ref())?;
        upstream::check_tls("INVENTORY_URL", &inventory_url, upstream_tls.as_ref())?;
        Ok(Self {
            listen: env::parse_or("GATEWAY_LISTEN", "127.0.0.1:8000")?,
            tls: tls::ServerTls::from_env()?,
            auth_url,
            inventory_url,
            upstream_tls,
            resolve_interval: upstream::resolve_interval_from_env()?,
            auth_rate: env::parse_or::<Throttling>("THROTTLE_AUTH_RATE", "20/minute")?.0,
            allowed_hosts: env::parse_or("ALLOWED_HOSTS", DEFAULT_ALLOWED_HOSTS)?,
            log_format: env::parse_or("LOG_FORMAT", "plain")?,
            upstream_timeout: UPSTREAM_TIMEOUT,
            request_timeout: env::millis_or("GATEWAY_REQUEST_TIMEOUT_MS", "30000")?,
            connections: Limits {
                header_timeout: env::millis_or("GATEWAY_HEADER_TIMEOUT_MS", "10000")?,
                idle_timeout: env::millis_or("GATEWAY_IDLE_TIMEOUT_MS", "60000")?,
                max_connections: connection_count("GATEWAY_MAX_CONNECTIONS", "1024")?,
                max_connections_per_client: connection_count(
                    "GATEWAY_MAX_CONNECTIONS_PER_CLIENT",
                    "64",
                )?,
            },
            session_cookie_secure: env::switch_or("SESSION_COOKIE_SECURE", false)?,
            csrf_trusted_origins: env::parse_or("CSRF_TRUSTED_ORIGINS", "")?,
            trusted_proxies: env::parse_or("TRUSTED_PROXIES", "")?,
            num_proxies: env::parse_or("NUM_PROXIES", "")?,
            cors_allowed_origins: env::parse_or("CORS_ALLOWED_ORIGINS", "")?,
        })
    }

    /// A gateway on a free loopback port in front of the given services, with throttling off.
    pub fn for_tests(auth_url: http::Uri, inventory_url: http::Uri) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
            auth_url: auth_url.to_string().parse().expect("an http:// URL"),
            inventory_url: inventory_url.to_string().parse().expect("an http:// URL"),
            upstream_tls: None,
            resolve_interval: Duration::from_secs(5),
            auth_rate: None,
            allowed_hosts: DEFAULT_ALLOWED_HOSTS
                .parse()
                .expect("the default hosts parse"),
            log_format: LogFormat::Plain,
            upstream_timeout: UPSTREAM_TIMEOUT,
            request_timeout: Duration::from_secs(30),
            connections: Limits {
                header_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(60),
                max_connections: 1024,
                // Every test client connects from 127.0.0.1.
                max_connections_per_client: 1024,
            },
            session_cookie_secure: false,
            csrf_trusted_origins: TrustedOrigins::default(),
            trusted_proxies: TrustedProxies::default(),
            num_proxies: ProxyCount::default(),
            cors_allowed_origins: TrustedOrigins::default(),
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

/// A cap on connections (`GATEWAY_MAX_CONNECTIONS`, `GATEWAY_MAX_CONNECTIONS_PER_CLIENT`): at
/// least 1, at most a million.
fn connection_count(name: &'static str, default: &str) -> Result<u32, ConfigError> {
    match env::parse_or::<u32>(name, default)? {
        n @ 1..=1_000_000 => Ok(n),
        n => Err(ConfigError::new(
            name,
            n.to_string(),
            "expected 1 to 1000000",
        )),
    }
}

/// A DRF-style rate: `N/second`, `N/minute`, `N/hour` or `N/day` (only the period's first
/// letter counts, as in DRF, so `20/min` and `20/m` work too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub requests: u32,
    pub period: Duration,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid =
            || format!("expected N/second, N/minute, N/hour, N/day or off, got {value:?}");
        let (count, period) = value.trim().split_once('/').ok_or_else(invalid)?;
        let requests: u32 = count.trim().parse().map_err(|_| invalid())?;
        let seconds = match period.trim().chars().next().map(|c| c.to_ascii_lowercase()) {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3_600,
            Some('d') => 86_400,
            _ => return Err(invalid()),
        };
        if requests == 0 {
            return Err(invalid());
        }
        Ok(Self {
            requests,
            period: Duration::from_secs(seconds),
        })
    }
}

/// `THROTTLE_AUTH_RATE`: a [`Rate`], or `off`.
struct Throttling(Option<Rate>);

impl FromStr for Throttling {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.trim().eq_ignore_ascii_case("off") {
            Ok(Self(None))
        } else {
            value.parse().map(|rate| Self(Some(rate)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_drf_rates() {
        let rate: Rate = "20/minute".parse().unwrap();
        assert_eq!(rate.requests, 20);
        assert_eq!(rate.period, Duration::from_secs(60));
        assert_eq!(
            "5/s".parse::<Rate>().unwrap().period,
            Duration::from_secs(1)
        );
        assert_eq!(
            "1/day".parse::<Rate>().unwrap().period,
            Duration::from_secs(86_400)
        );
        assert!("0/minute".parse::<Rate>().is_err());
        assert!("ten/minute".parse::<Rate>().is_err());
        assert!("10/fortnight".parse::<Rate>().is_err());
        assert!("off".parse::<Throttling>().unwrap().0.is_none());
    }

    /// The settings `from_env` reads are the rows of docs/API.md's configuration table that name
    /// this program, with their defaults; `--help` lists the same.
    #[test]
    fn every_setting_read_is_documented_and_every_documented_one_read() {
        service_kit::testing::settings::assert_documented("gateway", Config::from_env, &[]);
    }
}
