//! The per-account lockout against password guessing: a burst of guesses learns no more
//! verdicts than the threshold, right passwords never count however many arrive at once, and
//! the per-address count does not tell that a username and an email are one account.

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

/// A service account with several workers, or a client that retries, sends its right
/// password many times at once. Before the fix each attempt claimed a failure before hashing,
/// and ten at once answered five OK and five locked.
async fn right_passwords_at_once_never_lock_the_account(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.register("svc").await;
    let results = app
        .race(16, |mut client, _| async move {
            client.login(login_request("svc", PASSWORD)).await.map(drop)
        })
        .await;
    let refused: Vec<_> = results
        .iter()
        .filter_map(|result| result.clone().err())
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    // And none of them counted: five wrong passwords still get five verdicts.
    for _ in 0..5 {
        assert_rejected(
            app.login("svc", "Wrong1234").await,
            Code::Unauthenticated,
            reasons::INVALID_CREDENTIALS,
        );
    }
}

fn by_email(email: &str, password: &str) -> proto::auth::v1::LoginRequest {
    proto::auth::v1::LoginRequest {
        email: Some(email.to_owned()),
        password: Some(password.to_owned()),
        ..Default::default()
    }
}

/// From one address, three wrong passwords by username and three by email: before the fix one
/// account answered the sixth as locked and two accounts never did, which told that the
/// username and the email were one account.
async fn the_per_address_count_does_not_link_a_username_to_its_email(db: TestDatabase) {
    let app = spawn_app(&db).await;
    for (username, email) in [("pia", "pia@example.com"), ("quin", "rory@example.com")] {
        app.client()
            .register(proto::auth::v1::RegisterRequest {
                email: Some(email.to_owned()),
                ..registration(username)
            })
            .await
            .unwrap();
    }
    let answers = |username: &'static str, email: &'static str| {
        let mut client = app.client();
        async move {
            let mut codes = Vec::new();
            for _ in 0..3 {
                let status = client.login(login_request(username, "Wrong1234")).await;
                codes.push(status.unwrap_err().code());
            }
            for _ in 0..3 {
                let status = client.login(by_email(email, "Wrong1234")).await;
                codes.push(status.unwrap_err().code());
            }
            codes
        }
    };
    let one_account = answers("pia", "pia@example.com").await;
    let two_accounts = answers("quin", "pia-not@example.com").await;
    assert_eq!(one_account, [Code::Unauthenticated; 6]);
    assert_eq!(one_account, two_accounts);
    // The account-wide ceiling still holds: 20 failures from anywhere lock it.
    assert!(app.login("pia", PASSWORD).await.is_ok());
}

service_kit::on_both_backends!(
    a_concurrent_burst_gets_no_more_tries_than_the_threshold,
    the_delay_grows_with_each_further_failure_and_success_resets_it,
    right_passwords_at_once_never_lock_the_account,
    the_per_address_count_does_not_link_a_username_to_its_email,
);
