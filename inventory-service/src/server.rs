//! Building and running the server: bind first (so the port is known before anything else
//! starts), connect and migrate the database, mount health, reflection and the inventory
//! service behind the auth layer, then serve until the shutdown future resolves.

use std::{future::Future, net::SocketAddr};

use proto::inventory::v1::inventory_service_server::InventoryServiceServer;
use service_kit::{database::DatabaseError, grpc, verdicts::VerdictCache};
use tokio::net::TcpListener;
use tonic::{server::NamedService, service::Routes, transport::Endpoint};
use tonic_health::ServingStatus;
use tower::Layer;

use crate::{
    auth::{self, AuthLayer, TokenValidator},
    config::Config,
    grpc::InventoryApi,
    store::ProductStore,
};

/// The name health reports the inventory service under (NOT_SERVING while auth is unreachable).
pub const SERVICE_NAME: &str = <InventoryServiceServer<InventoryApi> as NamedService>::NAME;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("cannot set up server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A server that is bound and ready to run.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    routes: Routes,
    /// Drives the health of [`SERVICE_NAME`] from auth's reachability, while running.
    auth_health: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Deletes expired idempotency keys, while running.
    key_purge: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    limits: grpc::Limits,
    verdicts: VerdictCache,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    address: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            address: config.listen,
            source,
        })?;
        let store = ProductStore::connect(config.database_url.as_str()).await?;
        let writes = store.writes(config.idempotency_key_ttl);
        let key_purge = Box::pin(writes.clone().purge_periodically());

        // Lazy, so the service starts (NOT_SERVING) while auth is down, and one channel for the
        // whole process: it reconnects by itself when auth comes back.
        let auth_channel = Endpoint::from(config.auth_url.clone())
            .connect_timeout(config.auth_timeout)
            .connect_lazy();

        let (reporter, health_service) = tonic_health::server::health_reporter();
        // Unknown until auth has been seen: report the cautious answer.
        reporter
            .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
            .await;
        let auth_health = Box::pin(auth::watch_auth_health(
            auth_channel.clone(),
            config.auth_timeout,
            config.auth_health_interval,
            reporter,
            SERVICE_NAME,
        ));

        let validator = TokenValidator::new(auth_channel, config.auth_timeout);
        let verdicts = validator.verdicts().clone();
        let inventory = AuthLayer::new(validator).layer(service_kit::with_message_limits!(
            InventoryApi::new(store, writes).into_service(),
            config.grpc
        ));
        let mut routes = Routes::builder();
        routes.add_service(health_service).add_service(inventory);
        if config.reflection {
            grpc::add_reflection(&mut routes, SERVICE_NAME)?;
        }

        tracing::info!(%local_addr, auth_url = %config.auth_url, "inventory service ready");
        Ok(Self {
            listener,
            local_addr,
            routes: routes.routes(),
            auth_health,
            key_purge,
            limits: config.grpc,
            verdicts,
        })
    }

    /// The cache of auth's verdicts the auth layer serves from.
    pub fn verdicts(&self) -> VerdictCache {
        self.verdicts.clone()
    }

    /// The bound address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then lets in-flight calls finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let serving = grpc::serve(self.listener, self.routes, self.limits, shutdown);
        // The health watch and the purge never end by themselves; they stop with the server.
        tokio::select! {
            result = serving => result?,
            () = self.auth_health => {}
            () = self.key_purge => {}
        }
        tracing::info!("inventory service stopped");
        Ok(())
    }
}
