//! The verdict cache's failure cases: a holder that never acknowledges delays a write by one
//! lease at most; a holder cut off from auth serves nothing once its lease has run out;
//! holders recover by themselves when auth comes back; and a stream that reconnects while a
//! check is in flight keeps nothing that check fetched (faults injected by a proxy between the
//! inventory and auth).

use std::time::{Duration, Instant};

use proto::{
    auth::v1::{CredentialKind, RevokeTokenRequest, Role, WatchHello, WatchRequest, watch_request},
    inventory::v1::ListProductsRequest,
};
use service_kit::testing::{
    TestDatabase,
    fault_proxy::{Fault, Hold},
};
use sqlx::Connection as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::helpers::{TestApp, spawn_app, spawn_app_through_proxy, with_token};

service_kit::on_both_backends!(
    a_silent_holder_delays_a_write_by_one_lease_at_most,
    without_auth_the_cache_serves_nothing_after_its_lease_and_recovers,
    a_stream_that_reconnects_keeps_no_check_that_began_before_it_was_granted,
);

service_kit::on_postgres!(a_feed_reset_keeps_no_check_that_began_before_the_new_grant);

const WATCH: &str = "/auth.v1.AuthService/WatchRevocations";
const VALIDATE: &str = "/auth.v1.AuthService/ValidateToken";

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

/// How the holder's stream is made to reconnect.
enum Break {
    /// The connection under it breaks (the proxy resets it).
    Stream,
    /// Auth's feed listener loses its connection, and the replica starts every holder over.
    FeedReset,
}

async fn a_stream_that_reconnects_keeps_no_check_that_began_before_it_was_granted(
    db: TestDatabase,
) {
    reconnect_during_a_check(db, Break::Stream).await;
}

async fn a_feed_reset_keeps_no_check_that_began_before_the_new_grant(db: TestDatabase) {
    reconnect_during_a_check(db, Break::FeedReset).await;
}

/// The outside review's reproduction, with the proxy holding what the network held: the new
/// stream's hello (1 s), and the answer to a check auth made before the logout, until after
/// the logout returned and the new stream was granted. Before the fix, the first grant did not
/// end the check's epoch, its verdict was cached, and the logged-out token stayed good.
async fn reconnect_during_a_check(db: TestDatabase, how: Break) {
    let app = spawn_app_through_proxy(db).await;
    let proxy = app.proxy.as_ref().expect("a proxy");
    let token = app.user_token("alice", Role::Clerk, false).await;
    app.until_cache_trusted().await;
    read(&app, &token).await.expect("a clerk reads");

    proxy.inject(WATCH, Fault::DelayRequest(Duration::from_millis(1000)));
    let hold = Hold::new();
    proxy.inject(VALIDATE, Fault::HoldAnswer(hold.clone()));
    match how {
        Break::Stream => proxy.cut(WATCH),
        Break::FeedReset => terminate_auths_listener(&app).await,
    }
    // The new stream is open (the cache emptied, untrusted), its hello on its way.
    app.until_cache_untrusted().await;
    assert!(app.verdicts().is_empty());

    // A read now misses: auth validates the token at once, and the answer is held.
    let mut inventory = app.inventory();
    let in_flight = with_token(ListProductsRequest::default(), &token);
    let before_logout = tokio::spawn(async move { inventory.list_products(in_flight).await });
    hold.reached().await;

    app.auth()
        .revoke_token(with_token(RevokeTokenRequest {}, &token))
        .await
        .expect("the logout returns");
    app.until_cache_trusted().await;
    hold.release();
    before_logout
        .await
        .unwrap()
        .expect("the read that began before the logout is served");

    assert!(
        app.verdicts()
            .lookup(CredentialKind::Token, &token)
            .is_none(),
        "a verdict fetched before the new grant was kept"
    );
    let status = read(&app, &token)
        .await
        .expect_err("the logged-out token is refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // And again later, from the cache or not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = read(&app, &token)
        .await
        .expect_err("the logged-out token stays refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

/// Ends the PostgreSQL connection auth's revocation feed listens on.
async fn terminate_auths_listener(app: &TestApp) {
    let mut connection = sqlx::PgConnection::connect(app.auth_database().url())
        .await
        .expect("connects");
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert_eq!(terminated, [true], "auth has one listener");
}
