//! Reading the audit trail: superusers only, filtered by user, type and time, paged newest
//! first; and the background purge that forgets events past `AUDIT_RETENTION_DAYS`.

use std::time::Duration;

use proto::auth::v1::{self as pb, auth_service_client::AuthServiceClient};
use service_kit::testing::TestDatabase;
use tonic::{Code, transport::Channel};

use crate::{audit::trail, helpers::*};

async fn list(
    client: &mut AuthServiceClient<Channel>,
    admin: &str,
    request: pb::ListAuditEventsRequest,
) -> (Vec<(String, Option<i64>)>, u64) {
    let response = client
        .list_audit_events(authed(admin, request))
        .await
        .expect("a superuser reads the trail")
        .into_inner();
    let events = response
        .events
        .into_iter()
        .map(|event| (event.r#type, event.target_id))
        .collect();
    (events, response.total_count)
}

fn timestamp(app: &TestApp) -> prost_types::Timestamp {
    let now = std::time::SystemTime::UNIX_EPOCH
        + Duration::from_micros(u64::try_from(clock_micros(app)).unwrap());
    now.into()
}

fn clock_micros(app: &TestApp) -> i64 {
    use auth_service::clock::Clock;
    app.clock.now().0
}

async fn the_trail_filters_by_user_type_and_time_and_pages_newest_first(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let mut client = app.client();
    let gail = app.register("gail").await.id;
    app.advance(Duration::from_secs(60));
    let since = timestamp(&app);
    let hank = app.register("hank").await.id;
    app.token_for("hank").await;
    app.token_for("gail").await;
    app.advance(Duration::from_secs(60));
    let until = timestamp(&app);
    app.token_for("gail").await;

    let of_user = |user_id| pb::ListAuditEventsRequest {
        user_id: Some(user_id),
        ..Default::default()
    };
    let (events, total) = list(&mut client, &admin, of_user(gail)).await;
    let gails = vec![
        ("login.succeeded".to_owned(), Some(gail)),
        ("login.succeeded".to_owned(), Some(gail)),
        ("user.created".to_owned(), Some(gail)),
    ];
    assert_eq!((events, total), (gails, 3));

    let logins = pb::ListAuditEventsRequest {
        r#type: Some("login.succeeded".into()),
        ..Default::default()
    };
    let (events, total) = list(&mut client, &admin, logins.clone()).await;
    assert_eq!(
        total, 4,
        "the superuser's, hank's and gail's two: {events:?}"
    );
    assert!(events.iter().all(|(kind, _)| kind == "login.succeeded"));

    let in_range = pb::ListAuditEventsRequest {
        since: Some(since),
        until: Some(until),
        ..Default::default()
    };
    let (events, total) = list(&mut client, &admin, in_range).await;
    let expected = vec![
        ("login.succeeded".to_owned(), Some(gail)),
        ("login.succeeded".to_owned(), Some(hank)),
        ("user.created".to_owned(), Some(hank)),
    ];
    assert_eq!((events, total), (expected, 3));

    // Pages of two, newest first, counted in all.
    let page = |offset| pb::ListAuditEventsRequest {
        limit: Some(2),
        offset,
        ..logins.clone()
    };
    let (first, total) = list(&mut client, &admin, page(0)).await;
    let (second, _) = list(&mut client, &admin, page(2)).await;
    let (past, _) = list(&mut client, &admin, page(4)).await;
    assert_eq!(total, 4);
    assert_eq!(first, vec![("login.succeeded".to_owned(), Some(gail)); 2]);
    assert_eq!(second[0], ("login.succeeded".to_owned(), Some(hank)));
    assert_eq!(second.len(), 2);
    assert!(past.is_empty());
}

async fn only_superusers_read_the_trail(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let staff = app.staff_token(&admin, "ivan").await;
    let (_, clerk) = app.user_with_token("jane").await;
    let mut client = app.client();
    for key in [&staff, &clerk] {
        let refused = client
            .list_audit_events(authed(key, pb::ListAuditEventsRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
    let anonymous = client
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let unknown = pb::ListAuditEventsRequest {
        r#type: Some("login".into()),
        ..Default::default()
    };
    let errors = field_errors(client.list_audit_events(authed(&admin, unknown)).await);
    assert_eq!(errors, [pair("type", "Unknown event type.")]);
}

/// Events older than the retention go in the background purge; newer ones stay.
async fn the_purge_forgets_events_past_the_retention_and_keeps_the_rest(db: TestDatabase) {
    let mut config = auth_service::Config::for_tests(db.url());
    config.audit_retention = Some(Duration::from_secs(30 * 24 * 3600));
    config.purge_interval = Duration::from_millis(20);
    let app = spawn_app_with(config).await;
    app.admin_token().await;
    let kate = app.register("kate").await.id;
    app.advance(Duration::from_secs(31 * 24 * 3600));
    let liam = app.register("liam").await.id;
    let admin = app.token_for("admin").await;
    let admin_id = app.validate(&admin).await.unwrap().user.unwrap().id;
    let mut client = app.client();
    // The purge runs by itself; read until it has (a bounded wait, not a timed assertion).
    let mut left = Vec::new();
    for _ in 0..250 {
        left = trail(&mut client, &admin)
            .await
            .into_iter()
            .map(|event| (event.r#type, event.target_id))
            .collect();
        if !left.contains(&("user.created".to_owned(), Some(kate))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kept = vec![
        ("login.succeeded".to_owned(), Some(admin_id)),
        ("user.created".to_owned(), Some(liam)),
    ];
    assert_eq!(left, kept, "only the events of the last 30 days are kept");
}

service_kit::on_both_backends!(
    the_trail_filters_by_user_type_and_time_and_pages_newest_first,
    only_superusers_read_the_trail,
    the_purge_forgets_events_past_the_retention_and_keeps_the_rest,
);
