//! TLS to PostgreSQL: the service reaches a server that refuses plaintext with
//! `sslmode=verify-full` and the server's CA in `sslrootcert`, and refuses to start on a server
//! it cannot verify or without TLS. (The server is the test's own: `testing::tls_postgres`.)

use auth_service::{Application, Config};
use service_kit::{program::Server, testing::tls_postgres::TlsPostgres};

use crate::helpers::spawn_app_with;

/// What starting the service on `url` says, if it fails.
async fn start_error(url: &str) -> String {
    match Application::build(Config::for_tests(url)).await {
        Ok(_) => panic!("the service started on {url}"),
        Err(err) => err.to_string(),
    }
}

#[tokio::test]
async fn a_verified_tls_connection_serves_and_plaintext_or_a_stranger_is_refused() {
    let Some(server) = TlsPostgres::start() else {
        return;
    };
    let app = spawn_app_with(Config::for_tests(&server.url("verify-full"))).await;
    let (_, token) = app.user_with_token("clerk").await;
    app.validate(&token)
        .await
        .expect("the token is valid over TLS");
    app.stop().await;

    let plaintext = start_error(&server.url("disable")).await;
    assert!(
        plaintext.contains("no encryption") || plaintext.contains("pg_hba.conf"),
        "plaintext: {plaintext}"
    );
    let stranger = start_error(&server.url_trusting("verify-full", &server.other_ca())).await;
    assert!(
        stranger.to_lowercase().contains("certificate"),
        "a server signed by another CA: {stranger}"
    );
}

/// The suite's whole PostgreSQL half, again, over `sslmode=verify-full` to a server that takes
/// TLS only.
#[test]
fn the_postgresql_half_of_the_suite_passes_over_tls() {
    let Some(server) = TlsPostgres::start() else {
        return;
    };
    server.rerun_postgres_half(20);
}
