//! The limits the services are measured against: an axum handler answering the bytes of the
//! gateway's `/api/inventory/` page (the machine's limit for a page over HTTP), the two-hop
//! floor (`floor`: the same page fetched with one tonic call), a bare tonic server answering
//! tonic-health's `Check` (a unary call with next to nothing in it), and inventory's handlers
//! served without the auth layer in front of them. They run on a runtime of their own, with
//! as many worker threads as a service's `#[tokio::main]`, so they compete with the load
//! generator for the CPUs as a separate process would.

use std::{net::SocketAddr, sync::mpsc};

use axum::{Router, http::header, routing::get, serve::ListenerExt};
use inventory_service::{Config, cache::Products, grpc::InventoryApi, store::ProductStore};
use proto::auth::v1::User;
use service_kit::{grpc, listener, telemetry::LogFormat};
use sqlx::Connection;
use tokio::{net::TcpListener, sync::oneshot};
use tonic::{
    service::{Routes, interceptor::InterceptedService},
    transport::{Server, server::TcpIncoming},
};

use crate::{
    floor, process,
    stack::{INVENTORY_PATH, Stack},
};

/// Where the baselines listen. Dropped, they stop, and their runtime with them: inventory's
/// copy must let go of its database before the run drops it.
#[derive(Debug)]
pub struct Baselines {
    pub http: SocketAddr,
    /// The two-hop floor.
    pub floor: SocketAddr,
    pub grpc: SocketAddr,
    /// Inventory without its auth layer.
    pub inventory: SocketAddr,
    stop: Option<(oneshot::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Drop for Baselines {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.stop.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

/// Starts them on free ports, for `stack`; they serve until dropped.
pub fn start(stack: &Stack) -> Result<Baselines, String> {
    let page = stack.inventory_page.clone();
    let (database_url, admin) = (
        stack.inventory_database.url().to_owned(),
        stack.admin.clone(),
    );
    let (started, addresses) = mpsc::channel();
    let (stop, stopped) = oneshot::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime for the baselines");
        runtime.block_on(async move {
            let http = TcpListener::bind("127.0.0.1:0").await.expect("a port");
            let grpc = TcpListener::bind("127.0.0.1:0").await.expect("a port");
            let inventory = serve_inventory_without_auth_layer(&database_url, admin).await;
            let floor = floor::serve(INVENTORY_PATH, page.clone()).await;
            let addrs = inventory.map(|inventory| {
                (
                    http.local_addr().expect("an address"),
                    floor,
                    grpc.local_addr().expect("an address"),
                    inventory,
                )
            });
            // The same bytes every time, as the gateway answers an unchanged list from memory.
            let app = Router::new().route(
                INVENTORY_PATH,
                get(move || {
                    let page = page.clone();
                    async move { ([(header::CONTENT_TYPE, "application/json")], page) }
                }),
            );
            let (_health, health) = tonic_health::server::health_reporter();
            // No Nagle delay, as the gateway's own accept loop sets.
            let http = http.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            tokio::spawn(async move { axum::serve(http, app).await });
            tokio::spawn(
                Server::builder()
                    .add_service(health)
                    .serve_with_incoming(TcpIncoming::from(grpc).with_nodelay(Some(true))),
            );
            started.send(addrs).expect("the caller waits");
            let _ = stopped.await;
        });
    });
    let (http, floor, grpc, inventory) = addresses.recv().expect("the baselines start")?;
    Ok(Baselines {
        http,
        floor,
        grpc,
        inventory,
        stop: Some((stop, thread)),
    })
}

/// Inventory's own handlers on `database_url`, served as the binary serves them (service-kit's
/// server, its limits, its request ids and log subscriber, its default settings) but without the
/// auth layer: every call is `caller`'s, pinned by an interceptor that only puts it where the
/// layer would. What scenario 3 measures as the layer's cost is the binary's shortfall from this.
async fn serve_inventory_without_auth_layer(
    database_url: &str,
    caller: User,
) -> Result<SocketAddr, String> {
    // The bench gives the binary nothing but its URLs, so these are the binary's defaults.
    let config = Config::from_env().map_err(|e| format!("inventory's settings: {e}"))?;
    // Its log lines filtered as the bench filters the binary's (and in JSON, as it asks).
    service_kit::telemetry::init_with_directives(LogFormat::Json, process::INVENTORY.log_filter);
    let database_url = own_database(database_url).await?;
    let store = ProductStore::connect(&database_url)
        .await
        .map_err(|e| format!("inventory's database: {e}"))?;
    let writes = store.writes(config.idempotency_key_ttl);
    // Cached as the binary caches, so that the layer is all the two differ in.
    let products = Products::serve(store, &database_url, config.product_cache)
        .await
        .map_err(|e| format!("inventory's product cache: {e}"))?;
    let pin_caller = move |mut request: tonic::Request<()>| {
        request.extensions_mut().insert(caller.clone());
        Ok(request)
    };
    let mut routes = Routes::builder();
    routes.add_service(InterceptedService::new(
        service_kit::with_message_limits!(
            InventoryApi::new(products, writes).into_service(),
            config.grpc
        ),
        pin_caller,
    ));
    let (listener, address) = listener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(grpc::serve(
        listener,
        routes.routes(),
        config.grpc,
        None,
        false,
        config.hand_over.drain_timeout,
        std::future::pending(),
    ));
    Ok(address)
}

/// A database for the baseline with the binary's products: on PostgreSQL the binary's own
/// (replicas share one); on SQLite, whose file one server holds while it caches, a copy beside
/// it (removed with the binary's folder).
async fn own_database(binarys: &str) -> Result<String, String> {
    let Some(path) = binarys.strip_prefix("sqlite://") else {
        return Ok(binarys.to_owned());
    };
    let copy = format!("{}.baseline.db", path.trim_end_matches(".db"));
    let mut connection = sqlx::SqliteConnection::connect(binarys)
        .await
        .map_err(|e| format!("inventory's database: {e}"))?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "VACUUM INTO '{}'",
        copy.replace('\'', "''")
    )))
    .execute(&mut connection)
    .await
    .map_err(|e| format!("cannot copy inventory's database: {e}"))?;
    Ok(format!("sqlite://{copy}"))
}
