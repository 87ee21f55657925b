//! The services every server mounts beside its own: reflection (v1 and v1alpha, so every grpcurl
//! can list and call) and `grpc.health.v1.Health`, plus the serve loop itself.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::{
    service::{Routes, RoutesBuilder},
    transport::{Server, server::TcpIncoming},
};

use crate::request_id::RequestIdLayer;

const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// Adds both reflection versions. They describe the workspace contracts, health, and the
/// `google.rpc` error details (so grpcurl can print a `BadRequest` or `ErrorInfo`), and list
/// only the services this server really mounts: `service` besides health and reflection.
pub fn add_reflection(
    routes: &mut RoutesBuilder,
    service: &str,
) -> Result<(), tonic_reflection::server::Error> {
    let builder = |reflection: &str| {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(service)
            .with_service_name(HEALTH)
            .with_service_name(reflection)
    };
    routes.add_service(builder(REFLECTION_V1).build_v1()?);
    routes.add_service(builder(REFLECTION_V1ALPHA).build_v1alpha()?);
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
