//! Statelessness: replicas sharing one PostgreSQL agree at once. A SQLite file serves one
//! auth process: it cannot tell another of a revocation, so a second one refuses to start.

use proto::{auth::v1 as pb, reasons};
use service_kit::program::Server;
use service_kit::testing::TestDatabase;
use tonic::Code;

use crate::helpers::*;

async fn two_replicas_on_one_database_agree_at_once(db: TestDatabase) {
    let first = spawn_app(&db).await;
    let second = spawn_app(&db).await;
    assert_ne!(first.addr, second.addr);
    let (_, key) = first.user_with_token("pat").await;
    let on_second = second.validate(&key).await.unwrap();
    assert_eq!(on_second.user.unwrap().username.as_deref(), Some("pat"));

    first
        .client()
        .revoke_token(authed(&key, pb::RevokeTokenRequest {}))
        .await
        .unwrap();
    assert_rejected(
        second.validate(&key).await,
        Code::Unauthenticated,
        reasons::TOKEN_INVALID,
    );

    // Failed logins are counted in the database, so the lockout spans replicas too.
    for app in [&first, &second, &first, &second, &first] {
        assert_rejected(
            app.login("pat", "Wrong1234").await,
            Code::Unauthenticated,
            reasons::INVALID_CREDENTIALS,
        );
    }
    assert_eq!(
        second.login("pat", PASSWORD).await.unwrap_err().code(),
        Code::ResourceExhausted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgresql_agree_at_once() {
    if let Some(db) = TestDatabase::postgres().await {
        two_replicas_on_one_database_agree_at_once(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_sqlite_file_refuses_to_start_until_the_first_stops() {
    let db = TestDatabase::sqlite();
    let first = spawn_app(&db).await;
    let refused = auth_service::Application::build(auth_service::Config::for_tests(db.url()))
        .await
        .err()
        .expect("a second server on the file is refused");
    let message = refused.to_string();
    assert!(
        message.contains("another auth-service serves the SQLite database")
            && message.contains("run replicas on PostgreSQL"),
        "{message}"
    );
    // A console command (createsuperuser) serves no caches: it runs beside the server.
    let key = first.admin_token().await;
    first.stop().await;
    let second = spawn_app(&db).await;
    second.validate(&key).await.expect("the file is free again");
}
