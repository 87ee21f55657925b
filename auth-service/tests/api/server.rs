//! What every gRPC client sees before calling: health, reflection, graceful shutdown.

use proto::auth::v1 as pb;
use service_kit::testing::TestDatabase;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::{v1, v1alpha};

use crate::helpers::*;

async fn channel(app: &TestApp) -> Channel {
    Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn list_services_v1(channel: Channel) -> Result<Vec<String>, tonic::Status> {
    use v1::{
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = v1::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let response = responses.message().await?.expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("not a service list: {response:?}");
    };
    Ok(list.service.into_iter().map(|s| s.name).collect())
}

async fn list_services_v1alpha(channel: Channel) -> Vec<String> {
    use v1alpha::{
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("not a service list: {response:?}");
    };
    list.service.into_iter().map(|s| s.name).collect()
}

async fn health_and_both_reflection_versions_are_served(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let health = HealthClient::new(channel(&app).await)
        .check(HealthCheckRequest {
            service: "auth.v1.AuthService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    let expected = ["auth.v1.AuthService", "grpc.health.v1.Health"];
    let v1_services = list_services_v1(channel(&app).await).await.unwrap();
    let v1alpha_services = list_services_v1alpha(channel(&app).await).await;
    for name in expected {
        assert!(v1_services.iter().any(|s| s == name), "{v1_services:?}");
        assert!(
            v1alpha_services.iter().any(|s| s == name),
            "{v1alpha_services:?}"
        );
    }
}

async fn reflection_can_be_turned_off(db: TestDatabase) {
    let mut config = auth_service::Config::for_tests(db.url());
    config.reflection = false;
    let app = spawn_app_with(config).await;
    let status = list_services_v1(channel(&app).await).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
}

async fn shutdown_lets_the_server_stop_cleanly(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.register("quinn").await;
    let addr = app.addr;
    app.stop().await;
    // A new connection, so the answer is the refused connect, not how an old connection's last
    // moments happened to surface.
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut client = proto::auth::v1::auth_service_client::AuthServiceClient::new(channel);
    let after = client.login(pb::LoginRequest::default()).await.unwrap_err();
    assert_eq!(after.code(), Code::Unavailable);
}

service_kit::on_both_backends!(
    health_and_both_reflection_versions_are_served,
    reflection_can_be_turned_off,
    shutdown_lets_the_server_stop_cleanly,
);

#[test]
fn the_binary_answers_version_and_help_without_serving() {
    let binary = env!("CARGO_BIN_EXE_auth-service");
    service_kit::testing::assert_command_line(binary, "auth-service", env!("CARGO_PKG_VERSION"));
}
