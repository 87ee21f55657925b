//! Building and running the server: connect and migrate the database and set the product cache
//! up on it, then bind (port 0 picks a free port, which `local_addr` reports), mount health,
//! reflection and the inventory service behind the auth layer, and serve until the shutdown
//! future resolves.

use std::{future::Future, net::SocketAddr};

use proto::inventory::v1::inventory_service_server::InventoryServiceServer;
use service_kit::{
    grpc, listener,
    program::{Server, Stop},
    upstream::{self, Upstream},
    verdicts::VerdictCache,
};
use tonic::{server::NamedService, service::Routes};
use tonic_health::ServingStatus;
use tower::Layer;

use crate::{
    authentication::{self, RequireAuthenticationLayer, TokenValidator},
    cache::Products,
    config::Config,
    grpc::InventoryApi,
    store::ProductStore,
};

pub use service_kit::grpc::StartupError;

/// The name health reports the inventory service under (NOT_SERVING while auth is unreachable).
pub const SERVICE_NAME: &str = <InventoryServiceServer<InventoryApi> as NamedService>::NAME;

/// The name auth's replicas report their health under.
const AUTH_SERVICE_NAME: &str = proto::auth::v1::auth_service_server::SERVICE_NAME;

/// A server that is bound and ready to run.
pub struct Application {
    grpc: grpc::Bound,
    /// Drives the health of [`SERVICE_NAME`] from auth's reachability, while running.
    auth_health: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Deletes expired idempotency keys, while running.
    key_purge: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    verdicts: VerdictCache,
    products: Products,
}

impl Application {
    /// Where `GET /metrics` is served, when `METRICS_LISTEN` was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.grpc.metrics_addr()
    }

    /// The cache of auth's verdicts the auth layer serves from.
    pub fn verdicts(&self) -> VerdictCache {
        self.verdicts.clone()
    }

    /// The products reads are answered from (their cache is what tests look at).
    pub fn products(&self) -> Products {
        self.products.clone()
    }
}

impl Server for Application {
    type Settings = Config;
    type Error = StartupError;

    async fn build(config: Config) -> Result<Self, StartupError> {
        // Before anything that counts (caches, pools, clients) registers its series.
        if config.metrics_listen.is_some() {
            service_kit::metrics::install();
        }
        // The database first, as auth does: a port that is open belongs to a service that
        // could reach its database.
        let url = config.database_url.as_str();
        let store = ProductStore::connect(url).await?;
        let writes = store.writes(config.idempotency_key_ttl);
        let products = Products::serve(store, url, config.product_cache).await?;
        let (listener, local_addr) = listener::bind(config.listen).await?;
        let metrics = match config.metrics_listen {
            Some(address) => Some(listener::bind(address).await?.0),
            None => None,
        };
        let key_purge = Box::pin(writes.clone().purge_periodically());

        // Every auth replica, found and watched in the background, so the service starts
        // (NOT_SERVING) while auth is down and serves again when any replica comes back.
        let auth = Upstream::spawn(
            AUTH_SERVICE_NAME,
            &config.auth_url,
            upstream::Settings {
                resolve_interval: config.resolve_interval,
                timeout: config.auth_timeout,
                connect_timeout: config.auth_timeout,
                tls: config.auth_tls.clone(),
            },
        );

        let (reporter, health_service) = tonic_health::server::health_reporter();
        // Unknown until auth has been seen: report the cautious answer.
        reporter
            .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
            .await;
        let auth_health = Box::pin(authentication::watch_auth_health(
            auth.clone(),
            config.auth_timeout,
            config.auth_health_interval,
            reporter.clone(),
            SERVICE_NAME,
        ));

        let validator = TokenValidator::new(auth, config.auth_timeout);
        let verdicts = validator.verdicts().clone();
        let inventory =
            RequireAuthenticationLayer::new(validator).layer(service_kit::with_message_limits!(
                InventoryApi::new(products.clone(), writes).into_service(),
                config.grpc
            ));
        let mut routes = Routes::builder();
        routes.add_service(health_service).add_service(inventory);
        if config.reflection {
            grpc::add_reflection(&mut routes, SERVICE_NAME)?;
        }

        tracing::info!(%local_addr, auth_url = %config.auth_url, "inventory service ready");
        Ok(Self {
            grpc: grpc::Bound {
                listener,
                local_addr,
                routes: routes.routes(),
                limits: config.grpc,
                tls: config.tls.clone(),
                metrics,
                health: reporter,
                hand_over: config.hand_over,
            },
            auth_health,
            key_purge,
            verdicts,
            products,
        })
    }

    fn local_addr(&self) -> SocketAddr {
        self.grpc.local_addr
    }

    /// Hands over ([`grpc::HandOver`]) when `shutdown` resolves: NOT_SERVING through the
    /// grace, then calls in flight finish (within the drain deadline).
    async fn run_until_stopped(self, shutdown: impl Stop) -> Result<(), StartupError> {
        let (stop_watching, watch_stopped) = tokio::sync::oneshot::channel::<()>();
        let leaving = async move {
            shutdown.await;
            // Auth's reachability must not report the service SERVING again while it leaves.
            let _ = stop_watching.send(());
        };
        let serving = self.grpc.serve(SERVICE_NAME, leaving, || {});
        let auth_health = async move {
            tokio::select! {
                () = self.auth_health => {}
                _ = watch_stopped => std::future::pending::<()>().await,
            }
        };
        // The health watch and the purge never end by themselves; they stop with the server.
        let served = tokio::select! {
            result = serving => result,
            () = auth_health => Ok(()),
            () = self.key_purge => Ok(()),
        };
        self.products.leave().await;
        served?;
        tracing::info!("inventory service stopped");
        Ok(())
    }
}
