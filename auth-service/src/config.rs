//! The service's settings, read from the environment (names and defaults as in API.md) and
//! checked before anything starts; [`frontends`] has a grammar of its own, and [`recovery`]
//! holds password reset's and e-mail verification's (the mail's own are `crate::mail`'s).

mod frontends;
pub mod recovery;

use std::{net::SocketAddr, time::Duration};

use service_kit::{
    database::DatabaseUrl,
    env::{self, ConfigError},
    grpc, program,
    telemetry::LogFormat,
    tls::{Identities, ServerTls},
};

pub use frontends::TrustedFrontends;

use crate::mail::MailSettings;
use recovery::RecoverySettings;

#[derive(Debug, Clone)]
pub struct Config {
    /// `AUTH_LISTEN`, default `127.0.0.1:50051`.
    pub listen: SocketAddr,
    /// `AUTH_DATABASE_URL`, default `sqlite://auth.db` (created on first start).
    pub database_url: DatabaseUrl,
    /// `TOKEN_TTL_SECONDS`, default 86400: how long a token or session lives.
    pub token_ttl: Duration,
    /// `ARGON2_MEMORY_KIB`, `ARGON2_ITERATIONS`, `ARGON2_PARALLELISM`: OWASP's argon2id
    /// parameters by default.
    pub argon2: Argon2Params,
    /// `HASHING_CONCURRENCY`: how many hashes may run at once, each on a hashing thread of the
    /// lowest priority, so a burst of logins cannot exhaust memory (each hash holds
    /// `ARGON2_MEMORY_KIB`) and the async runtime always preempts it. Default: the CPUs.
    pub hashing_concurrency: usize,
    /// `HASHING_QUEUE_LIMIT`, default 64: how many more may wait for a hashing slot; past that a
    /// login is answered UNAVAILABLE at once (the gateway's 503 with `Retry-After`).
    pub hashing_queue_limit: usize,
    /// `HASHING_QUEUE_TIMEOUT_MS`, default 5000: how long one may wait for a slot before the
    /// same answer.
    pub hashing_queue_timeout: Duration,
    /// `LOGIN_LOCKOUT_THRESHOLD`, default 5: failed logins in a row on one account from one
    /// client address before that address is delayed; 0 turns the lockout off.
    pub lockout_threshold: u32,
    /// `LOGIN_LOCKOUT_ACCOUNT_THRESHOLD`, default 20: failed logins in a row on one account from
    /// anywhere before it is delayed everywhere.
    pub lockout_account_threshold: u32,
    /// `TOKEN_LIMIT_PER_USER`, default 100: live tokens (and, apart, sessions) one user may
    /// hold; a new one over the limit revokes the oldest. 0: no limit.
    pub token_limit_per_user: u32,
    /// `CREDENTIAL_PURGE_INTERVAL_SECONDS`, default 3600: how often expired credentials,
    /// refresh tombstones and stale failure counts are deleted in the background.
    pub purge_interval: Duration,
    /// `IDEMPOTENCY_KEY_TTL_SECONDS`: how long an admin write's idempotency key and its answer
    /// are kept ([`service_kit::idempotency::key_ttl_from_env`]); purged with the credentials.
    pub idempotency_key_ttl: Duration,
    /// `AUDIT_RETENTION_DAYS`, default 365: how long audit events are kept, purged with the
    /// credentials; 0 (`None`) keeps them forever.
    pub audit_retention: Option<Duration>,
    /// `VERDICT_CACHE_LEASE_MS`, default 3000: the lease a verdict cache (inventory's, the
    /// gateway's) holds on `WatchRevocations`. A withdrawing write waits for every holder's
    /// acknowledgement, or at most this long for a silent one (on PostgreSQL, a third longer
    /// for a replica that died). 0 turns caching off; set the same on every replica.
    pub verdict_cache_lease: Duration,
    /// `TRUSTED_FRONTENDS`, default none: the callers (addresses or CIDRs, or identities under
    /// mutual TLS; comma-separated) whose `x-client-address` is believed, i.e. the gateways;
    /// any other caller's failed logins are counted by its own address.
    pub trusted_frontends: TrustedFrontends,
    /// `REVOCATION_HOLDERS`, default none (any caller): under mutual TLS, the identities that
    /// may open `WatchRevocations`, i.e. the verdict caches of inventory and the gateway.
    pub revocation_holders: Identities,
    /// `TLS_CERT_FILE` and `TLS_KEY_FILE` (and `TLS_CLIENT_CA_FILE`), default none: the
    /// server then speaks TLS only (and requires client certificates from that CA).
    pub tls: Option<ServerTls>,
    /// `EMAIL_URL`, `DEFAULT_FROM_EMAIL`, `SITE_NAME`: how the service's mail leaves.
    pub mail: MailSettings,
    /// Password reset and e-mail verification ([`recovery`]).
    pub recovery: RecoverySettings,
    /// `MFA_ISSUER`, default `SITE_NAME`'s value: whose codes an authenticator app says the
    /// second factor's are (the otpauth URL's issuer), as allauth's `MFA_TOTP_ISSUER` defaults
    /// to the site's name.
    pub mfa_issuer: String,
    /// `METRICS_LISTEN`, default none: where `GET /metrics` (Prometheus) is served.
    pub metrics_listen: Option<SocketAddr>,
    /// `GRPC_REFLECTION`, default on.
    pub reflection: bool,
    /// `LOG_FORMAT`, default plain.
    pub log_format: LogFormat,
    /// The `GRPC_*` limits every server shares.
    pub grpc: grpc::Limits,
    /// `SHUTDOWN_GRACE_MS`, `DRAIN_TIMEOUT_MS`: how a replica leaves on SIGTERM.
    pub hand_over: grpc::HandOver,
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
        let hashing_concurrency = env::positive_or(
            "HASHING_CONCURRENCY",
            &default_hashing_concurrency().to_string(),
        )?;
        let database_url: DatabaseUrl =
            env::string_or("AUTH_DATABASE_URL", "sqlite://auth.db").into();
        let tls = ServerTls::from_env()?;
        let trusted_frontends: TrustedFrontends = env::parse_or("TRUSTED_FRONTENDS", "")?;
        let revocation_holders: Identities = env::parse_or("REVOCATION_HOLDERS", "")?;
        let certified = tls
            .as_ref()
            .is_some_and(ServerTls::requires_client_certificates);
        for (name, identities) in [
            ("REVOCATION_HOLDERS", &revocation_holders),
            ("TRUSTED_FRONTENDS", trusted_frontends.names()),
        ] {
            if !identities.is_empty() && !certified {
                return Err(ConfigError::new(
                    name,
                    identities.to_string(),
                    "names identities, which only client certificates carry: set \
                     TLS_CLIENT_CA_FILE (with TLS_CERT_FILE and TLS_KEY_FILE)",
                ));
            }
        }
        let mail = MailSettings::from_env()?;
        Ok(Self {
            listen: env::parse_or("AUTH_LISTEN", "127.0.0.1:50051")?,
            verdict_cache_lease: Duration::from_millis(u64::from(env::parse_or::<u32>(
                "VERDICT_CACHE_LEASE_MS",
                "3000",
            )?)),
            database_url,
            token_ttl: Duration::from_secs(env::positive_or("TOKEN_TTL_SECONDS", "86400")?),
            argon2,
            hashing_concurrency: usize::try_from(hashing_concurrency).unwrap_or(usize::MAX),
            hashing_queue_limit: env::parse_or("HASHING_QUEUE_LIMIT", "64")?,
            hashing_queue_timeout: Duration::from_millis(env::positive_or(
                "HASHING_QUEUE_TIMEOUT_MS",
                "5000",
            )?),
            lockout_threshold: env::parse_or("LOGIN_LOCKOUT_THRESHOLD", "5")?,
            lockout_account_threshold: env::parse_or("LOGIN_LOCKOUT_ACCOUNT_THRESHOLD", "20")?,
            token_limit_per_user: env::parse_or("TOKEN_LIMIT_PER_USER", "100")?,
            purge_interval: Duration::from_secs(env::positive_or(
                "CREDENTIAL_PURGE_INTERVAL_SECONDS",
                "3600",
            )?),
            idempotency_key_ttl: service_kit::idempotency::key_ttl_from_env()?,
            audit_retention: days(env::parse_or("AUDIT_RETENTION_DAYS", "365")?),
            trusted_frontends,
            revocation_holders,
            tls,
            mfa_issuer: env::string_or("MFA_ISSUER", &mail.site_name),
            mail,
            recovery: RecoverySettings::from_env()?,
            metrics_listen: service_kit::metrics::listen_from_env()?,
            reflection: env::switch_or("GRPC_REFLECTION", true)?,
            log_format: env::parse_or("LOG_FORMAT", "plain")?,
            grpc: grpc::Limits::from_env()?,
            hand_over: grpc::HandOver::from_env()?,
        })
    }

    /// For tests: any free port, the given database, and the cheapest argon2 parameters (the
    /// real ones are exercised by the benchmark).
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            token_ttl: Duration::from_secs(86400),
            argon2: Argon2Params {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            hashing_concurrency: 2,
            hashing_queue_limit: 64,
            hashing_queue_timeout: Duration::from_secs(5),
            lockout_threshold: 5,
            lockout_account_threshold: 20,
            token_limit_per_user: 100,
            purge_interval: Duration::from_secs(3600),
            idempotency_key_ttl: Duration::from_secs(86400),
            audit_retention: days(365),
            verdict_cache_lease: Duration::from_secs(3),
            // The tests play the gateway from loopback.
            trusted_frontends: TrustedFrontends::loopback(),
            revocation_holders: Identities::default(),
            tls: None,
            mail: MailSettings::for_tests(),
            recovery: RecoverySettings::for_tests(),
            mfa_issuer: "example.com".to_owned(),
            metrics_listen: None,
            reflection: true,
            log_format: LogFormat::Plain,
            grpc: grpc::Limits::default(),
            hand_over: grpc::HandOver::default(),
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

/// `days` days; 0 is `None`, for ever.
fn days(days: u32) -> Option<Duration> {
    (days > 0).then(|| Duration::from_secs(u64::from(days) * 24 * 60 * 60))
}

/// Every core: the hashing threads' low priority, not a core held back, keeps validations fast
/// during a login storm.
fn default_hashing_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    /// The settings `from_env` reads are the rows of docs/API.md's configuration table that name
    /// this program, with their defaults; `--help` lists the same.
    #[test]
    fn every_setting_read_is_documented_and_every_documented_one_read() {
        service_kit::testing::settings::assert_documented(
            "auth",
            Config::from_env,
            &["HASHING_CONCURRENCY", "MFA_ISSUER"],
        );
    }
}
