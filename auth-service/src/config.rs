//! The service's settings, read from the environment (names and defaults as in API.md) and
//! checked before anything starts.

use std::{net::SocketAddr, time::Duration};

use service_kit::{
    env::{self, ConfigError},
    telemetry::LogFormat,
};

#[derive(Debug, Clone)]
pub struct Config {
    /// `AUTH_LISTEN`, default `127.0.0.1:50051`.
    pub listen: SocketAddr,
    /// `AUTH_DATABASE_URL`, default `sqlite://auth.db` (created on first start).
    pub database_url: String,
    /// `TOKEN_TTL_SECONDS`, default 86400: how long a token or session lives.
    pub token_ttl: Duration,
    /// `ARGON2_MEMORY_KIB`, `ARGON2_ITERATIONS`, `ARGON2_PARALLELISM`: OWASP's argon2id
    /// parameters by default.
    pub argon2: Argon2Params,
    /// How many hashes may run at once on the blocking pool; more wait their turn, so a burst
    /// of logins cannot exhaust memory (each hash holds `ARGON2_MEMORY_KIB`). Default: the
    /// number of CPUs.
    pub hashing_concurrency: usize,
    /// `LOGIN_LOCKOUT_THRESHOLD`, default 5: failed logins in a row before an account is
    /// delayed; 0 turns the lockout off.
    pub lockout_threshold: u32,
    /// `GRPC_REFLECTION`, default on.
    pub reflection: bool,
    /// `LOG_FORMAT`, default plain.
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let argon2 = Argon2Params {
            memory_kib: env::parse_or("ARGON2_MEMORY_KIB", "19456")?,
            iterations: env::parse_or("ARGON2_ITERATIONS", "2")?,
            parallelism: env::parse_or("ARGON2_PARALLELISM", "1")?,
        };
        argon2::Params::new(
            argon2.memory_kib,
            argon2.iterations,
            argon2.parallelism,
            None,
        )
        .map_err(|err| {
            ConfigError::new(
                "ARGON2_MEMORY_KIB",
                format!("{argon2:?}"),
                format!("invalid argon2 parameters: {err}"),
            )
        })?;
        let ttl_seconds: u64 = env::parse_or("TOKEN_TTL_SECONDS", "86400")?;
        if ttl_seconds == 0 {
            return Err(ConfigError::new(
                "TOKEN_TTL_SECONDS",
                "0",
                "must be positive",
            ));
        }
        Ok(Self {
            listen: env::parse_or("AUTH_LISTEN", "127.0.0.1:50051")?,
            database_url: env::string_or("AUTH_DATABASE_URL", "sqlite://auth.db"),
            token_ttl: Duration::from_secs(ttl_seconds),
            argon2,
            hashing_concurrency: default_hashing_concurrency(),
            lockout_threshold: env::parse_or("LOGIN_LOCKOUT_THRESHOLD", "5")?,
            reflection: env::switch_or("GRPC_REFLECTION", true)?,
            log_format: env::parse_or("LOG_FORMAT", "plain")?,
        })
    }

    /// For tests: any free port, the given database, and the cheapest argon2 parameters (the
    /// real ones are exercised by the benchmark).
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_owned(),
            token_ttl: Duration::from_secs(86400),
            argon2: Argon2Params {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            hashing_concurrency: default_hashing_concurrency(),
            lockout_threshold: 5,
            reflection: true,
            log_format: LogFormat::Plain,
        }
    }
}

fn default_hashing_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}
