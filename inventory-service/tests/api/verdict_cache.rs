//! The verdict cache's failure cases: a holder that never acknowledges delays a write by one
//! lease at most; a holder cut off from auth serves nothing once its lease has run out; and
//! holders recover by themselves when auth comes back.

use std::time::{Duration, Instant};

use proto::{
    auth::v1::{CredentialKind, RevokeTokenRequest, Role, WatchHello, WatchRequest, watch_request},
    inventory::v1::ListProductsRequest,
};
use service_kit::testing::TestDatabase;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::helpers::{TestApp, spawn_app, with_token};

service_kit::on_both_backends!(
    a_silent_holder_delays_a_write_by_one_lease_at_most,
    without_auth_the_cache_serves_nothing_after_its_lease_and_recovers,
);

/// `auth_service::Config::for_tests`'s lease.
const LEASE: Duration = Duration::from_secs(3);

async fn a_silent_holder_delays_a_write_by_one_lease_at_most(db: TestDatabase) {
    let app = spawn_app(db).await;
    let token = app.user_token("alice", Role::Clerk, false).await;
    app.until_cache_trusted().await;
    app.inventory()
        .list_products(with_token(ListProductsRequest::default(), &token))
        .await
        .expect("a clerk reads");
    assert!(
        app.verdicts()
            .lookup(CredentialKind::Token, &token)
            .is_some()
    );

    // A raw holder: says hello, reads its first grant, and never acknowledges anything.
    let (requests, outbound) = tokio::sync::mpsc::channel(1);
    requests
        .send(WatchRequest {
            message: Some(watch_request::Message::Hello(WatchHello {
                holder: "silent-test-holder".to_owned(),
            })),
        })
        .await
        .unwrap();
    let mut events = app
        .auth()
        .watch_revocations(ReceiverStream::new(outbound))
        .await
        .expect("the watch opens")
        .into_inner();
    let first = events.message().await.unwrap().expect("a first heartbeat");
    assert_eq!(u128::from(first.lease_ms), LEASE.as_millis());

    let started = Instant::now();
    app.auth()
        .revoke_token(with_token(RevokeTokenRequest {}, &token))
        .await
        .expect("logout returns despite the silent holder");
    let waited = started.elapsed();
    assert!(waited <= LEASE + Duration::from_secs(1), "{waited:?}");
    assert!(
        waited >= Duration::from_secs(1),
        "it waited for the holder: {waited:?}"
    );
    // The real holder applied it all the same.
    let status = app
        .inventory()
        .list_products(with_token(ListProductsRequest::default(), &token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    drop(requests);
}

async fn without_auth_the_cache_serves_nothing_after_its_lease_and_recovers(db: TestDatabase) {
    let mut app = spawn_app(db).await;
    let token = app.user_token("alice", Role::Clerk, false).await;
    app.until_cache_trusted().await;
    read(&app, &token).await.expect("a clerk reads");
    assert!(
        app.verdicts()
            .lookup(CredentialKind::Token, &token)
            .is_some()
    );

    app.stop_auth().await;
    tokio::time::sleep(LEASE + Duration::from_millis(200)).await;
    assert!(!app.verdicts().is_trusted(), "no lease without auth");
    assert!(
        app.verdicts()
            .lookup(CredentialKind::Token, &token)
            .is_none()
    );
    let status = read(&app, &token)
        .await
        .expect_err("nothing is served from the cache");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(app.verdicts().is_empty());

    app.restart_auth().await;
    app.until_cache_trusted().await;
    read(&app, &token).await.expect("auth is back");
    assert!(
        app.verdicts()
            .lookup(CredentialKind::Token, &token)
            .is_some(),
        "caching again, with no restart"
    );
}

async fn read(app: &TestApp, token: &str) -> Result<(), tonic::Status> {
    app.inventory()
        .list_products(with_token(ListProductsRequest::default(), token))
        .await
        .map(drop)
}
