//! Building and running the server: settings are checked and the database is connected (and
//! migrated) first, so a bad configuration opens no socket; then the listener is bound (tests
//! use port 0 and read the real address) and the service, health and reflection mounted on it.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use proto::auth::v1::auth_service_server::AuthServiceServer;
use service_kit::{
    database::{Backend, Claim, SqliteClaim},
    grpc, listener,
    program::{Server, Stop},
};
use tonic::{server::NamedService, service::RoutesBuilder};

use crate::{
    clock::{Clock, SystemClock},
    config::Config,
    grpc::{AuthApi, Peers},
    hashing::{HashingLimits, PasswordHasher},
    mail::{Outbox, backend::MailBackend, sender::Sender},
    revocations::Revocations,
    service::{Accounts, IssuePolicy, LockoutPolicy, Purged},
    store::{CredentialLimit, Store},
};

pub use service_kit::grpc::StartupError;

/// A bound, ready server.
pub struct Application {
    grpc: grpc::Bound,
    accounts: Accounts,
    /// Delivers the outbox's messages while serving.
    mail: Sender,
    purge_interval: Duration,
    /// Held while serving, on SQLite.
    _sqlite_claim: Option<SqliteClaim>,
}

impl Application {
    /// Where `GET /metrics` is served, when `METRICS_LISTEN` was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.grpc.metrics_addr()
    }

    /// As [`Server::build`], with time from `clock` (tests move it by hand).
    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        // Before anything that counts (caches, pools, clients) registers its series.
        if config.metrics_listen.is_some() {
            service_kit::metrics::install();
        }
        // Help texts, now or whenever a recorder is installed (the stack's, the above).
        service_kit::metrics::describe_with(crate::metrics::describe);
        let (limits, hand_over) = (config.grpc, config.hand_over);
        let claim = if config.verdict_cache_lease.is_zero() {
            Claim::Cacheless
        } else {
            Claim::Caching
        };
        let sqlite_claim = SqliteClaim::take(config.database_url.as_str(), "auth-service", claim)?;
        let accounts = build_accounts(&config, clock, Caches::Served).await?;
        let backend = MailBackend::new(
            &config.mail.url,
            config.mail.from.clone(),
            config.mail.ca_pem.as_deref(),
        )
        .map_err(|err| StartupError::Service(format!("EMAIL_URL: {err}")))?;
        let mail = Sender::new(accounts.store().clone(), backend, accounts.outbox().wake());
        // Before the first call, while the hashing pool is idle; the console commands check
        // no passwords a client could time, so only the server learns.
        accounts.learn_hash_costs().await;
        let (listener, local_addr) = listener::bind(config.listen).await?;
        let metrics = match config.metrics_listen {
            Some(address) => Some(listener::bind(address).await?.0),
            None => None,
        };

        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<AuthServiceServer<AuthApi>>().await;
        let mut routes = RoutesBuilder::default();
        routes.add_service(health_service);
        if config.reflection {
            grpc::add_reflection(&mut routes, AuthServiceServer::<AuthApi>::NAME)?;
        }
        // Withdrawing writes publish to the verdict caches after their commit: a client that
        // hangs up must not stop one in between.
        routes.add_service(grpc::RunToEnd(service_kit::with_message_limits!(
            AuthServiceServer::new(AuthApi::new(
                accounts.clone(),
                Peers::new(
                    config.trusted_frontends.clone(),
                    config.revocation_holders.clone(),
                ),
            )),
            limits
        )));
        Ok(Self {
            grpc: grpc::Bound {
                listener,
                local_addr,
                routes: routes.routes(),
                limits,
                tls: config.tls.clone(),
                metrics,
                health,
                hand_over,
            },
            accounts,
            mail,
            purge_interval: config.purge_interval,
            _sqlite_claim: sqlite_claim,
        })
    }
}

impl Server for Application {
    type Settings = Config;
    type Error = StartupError;

    async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    fn local_addr(&self) -> SocketAddr {
        self.grpc.local_addr
    }

    /// Hands over ([`grpc::HandOver`]) when `shutdown` resolves: NOT_SERVING through the
    /// grace, then calls in flight finish (within the drain deadline) before this returns.
    async fn run_until_stopped(self, shutdown: impl Stop) -> Result<(), StartupError> {
        tracing::info!(addr = %self.local_addr(), "auth service listening");
        let hub = self.accounts.revocations().clone();
        let purge = tokio::spawn(purge_every(self.accounts.clone(), self.purge_interval));
        let mail = tokio::spawn(self.mail.run());
        let service = AuthServiceServer::<AuthApi>::NAME;
        // Revocation streams never end by themselves; the drain would wait for them.
        let served = self.grpc.serve(service, shutdown, || hub.close()).await;
        purge.abort();
        mail.abort();
        self.accounts.revocations().leave().await;
        served?;
        Ok(())
    }
}

/// Credentials and failure counts would otherwise pile up until their user logs in again.
async fn purge_every(accounts: Accounts, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        match accounts.purge().await {
            Ok(purged) => {
                let Purged {
                    credentials,
                    failures,
                    idempotency_keys,
                    audit_events,
                } = purged;
                crate::metrics::purged(credentials, failures, idempotency_keys, audit_events);
                tracing::debug!(?purged, "expired rows purged");
            }
            Err(err) => tracing::warn!(error = %err, "purge failed; retried next time"),
        }
        match accounts.purge_recovery().await {
            Ok((letters, tokens)) => crate::metrics::purged_recovery(letters, tokens),
            Err(err) => tracing::warn!(error = %err, "purge failed; retried next time"),
        }
    }
}

/// The state of a console command (an import, the first superuser): it serves no verdict
/// caches, and on PostgreSQL the database announces its withdrawals to those of the replicas.
pub(crate) async fn build_console_accounts(config: &Config) -> Result<Accounts, StartupError> {
    build_accounts(config, Arc::new(SystemClock), Caches::NotServed).await
}

/// Whether this process serves verdict caches (`WatchRevocations`).
enum Caches {
    Served,
    NotServed,
}

/// The service state over a migrated database.
async fn build_accounts(
    config: &Config,
    clock: Arc<dyn Clock>,
    caches: Caches,
) -> Result<Accounts, StartupError> {
    let url = config.database_url.as_str();
    let store = Store::connect(url).await?;
    let lease = config.verdict_cache_lease;
    let revocations = match caches {
        Caches::Served if Backend::of_url(url) == Some(Backend::Postgres) && !lease.is_zero() => {
            Revocations::replica(lease, url).await?
        }
        Caches::Served => Revocations::local(lease),
        Caches::NotServed => Revocations::local(Duration::ZERO),
    };
    let limits = HashingLimits {
        concurrency: config.hashing_concurrency,
        queue_limit: config.hashing_queue_limit,
        queue_timeout: config.hashing_queue_timeout,
    };
    let hasher = PasswordHasher::new(config.argon2, limits)
        .map_err(|err| StartupError::Service(format!("cannot set up password hashing: {err}")))?;
    let issue = IssuePolicy {
        token_ttl: config.token_ttl,
        limit_per_user: CredentialLimit(
            Some(config.token_limit_per_user).filter(|limit| *limit > 0),
        ),
        mfa_issuer: config.mfa_issuer.as_str().into(),
    };
    let lockout = LockoutPolicy {
        threshold: config.lockout_threshold,
        account_threshold: config.lockout_account_threshold,
    };
    let writes = store.writes(config.idempotency_key_ttl);
    let outbox = Outbox::new(config.mail.clone());
    Ok(
        Accounts::new(store, hasher, clock, issue, lockout, revocations, writes)
            .with_mail(outbox, config.recovery.clone())
            .keeping_audit_events(config.audit_retention),
    )
}
