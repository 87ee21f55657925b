//! The services every server mounts beside its own: reflection (v1 and v1alpha, so every grpcurl
//! can list and call) and `grpc.health.v1.Health`, plus the serve loop itself.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::{
    service::{Routes, RoutesBuilder},
    transport::{Server, server::TcpIncoming},
};

use crate::request_id::RequestIdLayer;

/// Adds both reflection versions, knowing the workspace contracts and the health service.
pub fn add_reflection(routes: &mut RoutesBuilder) -> Result<(), tonic_reflection::server::Error> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    routes.add_service(builder().build_v1()?);
    routes.add_service(builder().build_v1alpha()?);
    Ok(())
}

/// Serves `routes` on `listener` until `shutdown` resolves, then lets in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .layer(RequestIdLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
