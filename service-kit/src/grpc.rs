//! The services every server mounts beside its own: reflection (v1 and v1alpha, so every grpcurl
//! can list and call) and `grpc.health.v1.Health`, plus the serve loop itself.

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio::net::TcpListener;
use tonic::{
    service::{Routes, RoutesBuilder},
    transport::{Endpoint, Server, server::TcpIncoming},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
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

/// Asks the server listening on `listen` (this host) whether `service` is SERVING: what a
/// container's health check runs, since the runtime image has no shell or probe tool.
pub async fn probe_health(listen: SocketAddr, service: &str) -> Result<(), String> {
    let mut target = listen;
    if target.ip().is_unspecified() {
        target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let channel = Endpoint::from_shared(format!("http://{target}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map_err(|status| format!("health check failed: {}", status.message()))?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        status => Err(format!("{service} is {}", status.as_str_name())),
    }
}
