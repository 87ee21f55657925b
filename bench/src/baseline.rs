//! The limits the services are measured against: an axum handler answering a fixed copy of the
//! gateway's `/api/inventory/` document, and a bare tonic server answering tonic-health's
//! `Check` (a unary call with next to nothing in it). They run on a runtime of their own, with
//! as many worker threads as a service's `#[tokio::main]`, so they compete with the load
//! generator for the CPUs as a separate process would.

use std::{net::SocketAddr, sync::Arc, sync::mpsc};

use axum::{Json, Router, routing::get, serve::ListenerExt};
use serde_json::Value;
use tokio::net::TcpListener;
use tonic::transport::{Server, server::TcpIncoming};

/// Where the two baselines listen.
#[derive(Debug, Clone, Copy)]
pub struct Baselines {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
}

/// The path the HTTP baseline answers, the gateway's own.
pub const INVENTORY_PATH: &str = "/api/inventory/";

/// Starts both on free ports; they serve until the process exits.
pub fn start(inventory: Value) -> Baselines {
    let (started, addresses) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime for the baselines");
        runtime.block_on(async move {
            let http = TcpListener::bind("127.0.0.1:0").await.expect("a port");
            let grpc = TcpListener::bind("127.0.0.1:0").await.expect("a port");
            let addrs = Baselines {
                http: http.local_addr().expect("an address"),
                grpc: grpc.local_addr().expect("an address"),
            };
            // Serialized on every request, as the gateway serializes its answer.
            let document = Arc::new(inventory);
            let app = Router::new().route(
                INVENTORY_PATH,
                get(move || {
                    let document = Arc::clone(&document);
                    async move { Json(Value::clone(&document)) }
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
            std::future::pending::<()>().await;
        });
    });
    addresses.recv().expect("the baselines start")
}
