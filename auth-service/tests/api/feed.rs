//! The revocation feed across replicas on PostgreSQL: a write served by one replica waits for
//! the verdict caches watching another (the replicas' own caches of what they validated
//! included), and the feed's failure cases: a replica that died without leaving, one whose
//! listener lost its connection, and one that leaves. The database announces withdrawals
//! itself, so an operator's own SQL reaches every cache too.

use std::time::{Duration, Instant};

use proto::auth::v1::{self as pb, CredentialKind};
use service_kit::{testing::TestDatabase, verdicts::VerdictCache};
use sqlx::{Connection, PgConnection};
use tonic::transport::Endpoint;

use crate::helpers::*;

/// The replica lease the feed derives from `Config::for_tests`'s holder lease (3 s).
const REPLICA_LEASE: Duration = Duration::from_secs(4);
const ROUNDS: usize = 100;

/// A verdict cache watching `app`, as inventory and the gateway hold one, trusted.
async fn holder_of(app: &TestApp) -> VerdictCache {
    let channel = Endpoint::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect_lazy();
    let cache = VerdictCache::spawn(channel, "feed-test");
    until(|| cache.is_trusted(), "the holder gets a lease").await;
    cache
}

async fn until(condition: impl Fn() -> bool, what: &str) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < Duration::from_secs(10), "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asks `app` for `key`'s verdict and caches it in `cache`, as a holder does.
async fn warm(cache: &VerdictCache, app: &TestApp, key: &str) {
    let ticket = cache.ticket();
    let verdict = app.validate(key).await.expect("the key is valid");
    cache.insert(ticket, CredentialKind::Token, key, &verdict);
    assert!(
        cache.lookup(CredentialKind::Token, key).is_some(),
        "the cache holds the verdict"
    );
}

async fn database(db: &TestDatabase) -> PgConnection {
    PgConnection::connect(db.url()).await.expect("connects")
}

async fn postgres() -> Option<TestDatabase> {
    TestDatabase::postgres().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_replica_is_applied_by_the_holders_of_another_before_it_returns() {
    let Some(db) = postgres().await else { return };
    let watched = spawn_app(&db).await;
    let writer = spawn_app(&db).await;
    let cache = holder_of(&watched).await;
    let (user, _) = watched.user_with_token("pat").await;
    let admin = writer.admin_token().await;
    for round in 0..ROUNDS {
        let key = writer.token_for("pat").await;
        warm(&cache, &watched, &key).await;
        writer
            .client()
            .revoke_token(authed(&key, pb::RevokeTokenRequest {}))
            .await
            .expect("logout");
        assert!(
            cache.lookup(CredentialKind::Token, &key).is_none(),
            "round {round}: a logout on the other replica is applied"
        );

        let key = writer.token_for("pat").await;
        warm(&cache, &watched, &key).await;
        let role = if round % 2 == 0 {
            pb::Role::Manager
        } else {
            pb::Role::Clerk
        };
        writer
            .client()
            .update_user(authed(
                &admin,
                pb::UpdateUserRequest {
                    id: user.id,
                    role: role.into(),
                    ..Default::default()
                },
            ))
            .await
            .expect("a role change");
        assert!(
            cache.lookup(CredentialKind::Token, &key).is_none(),
            "round {round}: a role change on the other replica is applied"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_died_without_leaving_delays_a_write_by_its_lease_at_most() {
    let Some(db) = postgres().await else { return };
    let app = spawn_app(&db).await;
    let (_, key) = app.user_with_token("pat").await;
    // What a replica killed mid-lease leaves: a live row that acknowledges nothing more.
    sqlx::query(
        "INSERT INTO auth_replicas (replica, acked_mark, lease_until) \
         VALUES ('auth-killed', 0, now() + interval '4 seconds')",
    )
    .execute(&mut database(&db).await)
    .await
    .unwrap();
    let started = Instant::now();
    app.client()
        .revoke_token(authed(&key, pb::RevokeTokenRequest {}))
        .await
        .expect("the logout returns");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2), "it waited: {waited:?}");
    assert!(
        waited <= REPLICA_LEASE + Duration::from_secs(2),
        "{waited:?}"
    );

    // Its lease is over: the next write does not wait for it.
    let key = app.token_for("pat").await;
    let started = Instant::now();
    app.client()
        .revoke_token(authed(&key, pb::RevokeTokenRequest {}))
        .await
        .expect("the logout returns");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_listener_lost_its_connection_starts_its_holders_over_and_recovers() {
    let Some(db) = postgres().await else { return };
    let app = spawn_app(&db).await;
    let cache = holder_of(&app).await;
    let (_, key) = app.user_with_token("pat").await;
    warm(&cache, &app, &key).await;

    // What it announced while the connection was down is lost: nothing cached may stay.
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut database(&db).await)
    .await
    .unwrap();
    assert_eq!(terminated, [true], "one listener per replica");
    until(|| cache.is_empty(), "the holder starts over").await;
    until(|| cache.is_trusted(), "the holder is granted again").await;

    warm(&cache, &app, &key).await;
    app.client()
        .revoke_token(authed(&key, pb::RevokeTokenRequest {}))
        .await
        .expect("logout");
    assert!(
        cache.lookup(CredentialKind::Token, &key).is_none(),
        "the feed passes revocations on again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_leaves_is_not_waited_for() {
    let Some(db) = postgres().await else { return };
    let staying = spawn_app(&db).await;
    let leaving = spawn_app(&db).await;
    let replicas = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM auth_replicas WHERE lease_until > now()")
            .fetch_one(&mut database(&db).await)
            .await
            .unwrap()
    };
    assert_eq!(replicas().await, 2);
    leaving.stop().await;
    assert_eq!(replicas().await, 1, "it deleted its row on the way out");

    let (_, key) = staying.user_with_token("pat").await;
    let started = Instant::now();
    staying
        .client()
        .revoke_token(authed(&key, pb::RevokeTokenRequest {}))
        .await
        .expect("logout");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_own_delete_reaches_every_cache() {
    let Some(db) = postgres().await else { return };
    let app = spawn_app(&db).await;
    let cache = holder_of(&app).await;
    let (_, key) = app.user_with_token("pat").await;
    warm(&cache, &app, &key).await;
    sqlx::query("DELETE FROM credentials")
        .execute(&mut database(&db).await)
        .await
        .unwrap();
    // No RPC waited for this one: it arrives when it arrives, but it does arrive, at the
    // holder and at the replica's own cache of what it validated.
    until(
        || cache.lookup(CredentialKind::Token, &key).is_none(),
        "the holder forgets the deleted key",
    )
    .await;
    assert_rejected(
        app.validate(&key).await,
        tonic::Code::Unauthenticated,
        proto::reasons::TOKEN_INVALID,
    );
}
