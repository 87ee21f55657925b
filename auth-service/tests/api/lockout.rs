//! The per-account lockout against password guessing.

use std::time::Duration;

use proto::reasons;
use service_kit::testing::TestDatabase;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::*;

fn retry_delay(status: &Status) -> Duration {
    status
        .get_error_details()
        .retry_info()
        .and_then(|info| info.retry_delay)
        .expect("a RetryInfo with a delay")
}

async fn a_concurrent_burst_gets_no_more_tries_than_the_threshold(db: TestDatabase) {
    let app = spawn_app(&db).await;
    assert_eq!(app.config.lockout_threshold, 5);
    app.register("nora").await;
    let results = app
        .race(20, |mut client, i| async move {
            client
                .login(proto::auth::v1::LoginRequest {
                    username: Some("nora".into()),
                    password: Some(format!("Guess{i:04}")),
                    ..Default::default()
                })
                .await
        })
        .await;
    let checked = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .is_err_and(|s| reason(s) == reasons::INVALID_CREDENTIALS)
        })
        .count();
    let locked: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|s| s.code() == Code::ResourceExhausted)
        .collect();
    assert_eq!(checked, 5, "{results:?}");
    assert_eq!(locked.len(), 15, "{results:?}");
    for status in &locked {
        assert_eq!(reason(status), reasons::ACCOUNT_LOCKED);
        assert!(retry_delay(status) <= Duration::from_secs(1));
    }

    // Even the right password waits out the delay; then it gets in.
    let status = app.login("nora", PASSWORD).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    app.advance(Duration::from_secs(1));
    assert!(app.login("nora", PASSWORD).await.is_ok());
}

async fn the_delay_grows_with_each_further_failure_and_success_resets_it(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.register("omar").await;
    for _ in 0..4 {
        assert_rejected(
            app.login("omar", "Wrong1234").await,
            Code::Unauthenticated,
            reasons::INVALID_CREDENTIALS,
        );
    }
    // A success resets the count: four more failures do not lock.
    assert!(app.login("omar", PASSWORD).await.is_ok());
    for _ in 0..4 {
        assert_rejected(
            app.login("omar", "Wrong1234").await,
            Code::Unauthenticated,
            reasons::INVALID_CREDENTIALS,
        );
    }
    // The fifth failure in a row locks for 1 s, the sixth (after waiting) for 2 s.
    assert_rejected(
        app.login("omar", "Wrong1234").await,
        Code::Unauthenticated,
        reasons::INVALID_CREDENTIALS,
    );
    let first = app.login("omar", "Wrong1234").await.unwrap_err();
    assert_eq!(retry_delay(&first), Duration::from_secs(1));
    app.advance(Duration::from_secs(1));
    assert_rejected(
        app.login("omar", "Wrong1234").await,
        Code::Unauthenticated,
        reasons::INVALID_CREDENTIALS,
    );
    let second = app.login("omar", "Wrong1234").await.unwrap_err();
    assert_eq!(retry_delay(&second), Duration::from_secs(2));
}

service_kit::on_both_backends!(
    a_concurrent_burst_gets_no_more_tries_than_the_threshold,
    the_delay_grows_with_each_further_failure_and_success_resets_it,
);
