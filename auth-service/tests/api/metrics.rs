//! Prometheus metrics (`METRICS_LISTEN`): `GET /metrics` counts each gRPC call by service,
//! method and code and times it, beside the `process_*` series; a call to a path no contract
//! declares is counted as `unknown`, never under its made-up name; auth's own series (logins,
//! hashing) and its pool's are there; and promtool, Prometheus' own checker, passes the
//! exposition. (The recorder is the process's: other tests' calls count too, so counts are
//! checked as at least.)

use std::net::SocketAddr;

use auth_service::{Application, Config};
use proto::auth::v1::auth_service_client::AuthServiceClient;
use service_kit::{
    program::Server,
    testing::{
        TestDatabase,
        scrape::{promtool_accepts, scrape, value},
    },
};
use tonic::transport::Channel;
use tower::ServiceExt;

use crate::helpers::{login_request, registration, run};

#[tokio::test]
async fn every_call_is_counted_by_method_and_code_and_unknown_paths_stay_unknown() {
    let db = TestDatabase::sqlite();
    let mut config = Config::for_tests(db.url());
    config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let app = Application::build(config).await.expect("auth starts");
    let (addr, metrics) = (
        app.local_addr(),
        app.metrics_addr().expect("a metrics port"),
    );
    let _server = run(app);
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = AuthServiceClient::new(channel.clone());
    client.register(registration("kim")).await.unwrap();
    let wrong = client.login(login_request("kim", "Wrong-Pass-1")).await;
    assert_eq!(wrong.unwrap_err().code(), tonic::Code::Unauthenticated);
    // A path no contract declares, sent as any client could.
    let made_up = http::Request::post(format!("http://{addr}/made.up.Service/Guess"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::empty())
        .unwrap();
    let answered = channel.oneshot(made_up).await.unwrap();
    assert_eq!(answered.headers()["grpc-status"], "12", "UNIMPLEMENTED");

    let exposed = scrape(metrics).await;
    let service = r#"grpc_service="auth.v1.AuthService""#;
    let register = [service, r#"grpc_method="Register""#, r#"grpc_code="OK""#];
    assert!(
        value(&exposed, "grpc_server_handled_total", &register) >= Some(1.0),
        "{exposed}"
    );
    let login = [
        service,
        r#"grpc_method="Login""#,
        r#"grpc_code="Unauthenticated""#,
    ];
    assert!(
        value(&exposed, "grpc_server_handled_total", &login) >= Some(1.0),
        "{exposed}"
    );
    let timed = [service, r#"grpc_method="Login""#, r#"le="+Inf""#];
    assert!(value(&exposed, "grpc_server_handling_seconds_bucket", &timed) >= Some(1.0));
    let unknown = [r#"grpc_method="unknown""#, r#"grpc_code="Unimplemented""#];
    assert!(
        value(&exposed, "grpc_server_handled_total", &unknown) >= Some(1.0),
        "{exposed}"
    );
    assert!(
        !exposed.contains("Guess") && !exposed.contains("made.up"),
        "{exposed}"
    );
    let process = exposed
        .lines()
        .find(|line| line.starts_with("process_resident_memory_bytes "));
    assert!(process.is_some(), "no process_* series: {exposed}");
    // auth's own series: the wrong password, the hashing queue, the pool.
    let failed = value(&exposed, "auth_logins_total", &[r#"outcome="failed""#]);
    assert!(failed >= Some(1.0), "{exposed}");
    assert!(
        value(&exposed, "auth_hashing_running", &[]).is_some(),
        "{exposed}"
    );
    assert!(
        value(&exposed, "auth_hashing_waiting", &[]).is_some(),
        "{exposed}"
    );
    let pool = [r#"pool="auth""#, r#"state="idle""#];
    assert!(
        value(&exposed, "db_pool_connections", &pool).is_some(),
        "{exposed}"
    );
    assert!(value(&exposed, "db_pool_max_connections", &[r#"pool="auth""#]) >= Some(1.0));
    promtool_accepts(&exposed);
}
