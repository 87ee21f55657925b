//! The security review's findings on the auth service, each as the attack it describes: the
//! password-change oracle, the lockout by account and address, superuser takeover, revocation
//! racing issuance, lost admin updates, sessions at refresh, piling credentials and the
//! unbounded hashing queue.

use std::time::Duration;

use proto::{
    auth::v1::{self as pb, auth_service_client::AuthServiceClient},
    reasons,
};
use service_kit::testing::{TestDatabase, race::race_pair};
use tonic::{Code, Request, Status, transport::Channel};
use tonic_types::StatusExt;

use crate::helpers::*;

async fn login_from(
    app: &TestApp,
    address: &str,
    username: &str,
    password: &str,
) -> Result<pb::LoginResponse, Status> {
    app.client()
        .login(from_address(address, login_request(username, password)))
        .await
        .map(tonic::Response::into_inner)
}

fn change_password(token: &str, old: &str, new: &str) -> Request<pb::ChangePasswordRequest> {
    authed(
        token,
        pb::ChangePasswordRequest {
            old_password: Some(old.to_owned()),
            new_password: Some(new.to_owned()),
        },
    )
}

async fn wrong_old_passwords_count_toward_the_lockout(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let (_, token) = app.user_with_token("oracle").await;
    for guess in 0..5 {
        let wrong = app
            .client()
            .change_password(change_password(
                &token,
                &format!("Guess{guess}xx"),
                "Newpass123",
            ))
            .await;
        assert_eq!(
            field_errors(wrong),
            [pair(
                "old_password",
                "Your old password was entered incorrectly. Please enter it again."
            )]
        );
    }
    // Locked now, even for the right old password, and for logins from the same client.
    let locked = app
        .client()
        .change_password(change_password(&token, PASSWORD, "Newpass123"))
        .await;
    assert_rejected(locked, Code::ResourceExhausted, reasons::ACCOUNT_LOCKED);
    assert_rejected(
        app.login("oracle", PASSWORD).await,
        Code::ResourceExhausted,
        reasons::ACCOUNT_LOCKED,
    );
    app.advance(Duration::from_secs(2));
    app.client()
        .change_password(change_password(&token, PASSWORD, "Newpass123"))
        .await
        .expect("after the delay, the right old password works");
}

async fn a_guesser_at_one_address_does_not_lock_the_owner_out_elsewhere(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.register("owner").await;
    for _ in 0..5 {
        let guess = login_from(&app, "203.0.113.7", "owner", "Wrong1234").await;
        assert_rejected(guess, Code::Unauthenticated, reasons::INVALID_CREDENTIALS);
    }
    let locked = login_from(&app, "203.0.113.7", "owner", PASSWORD).await;
    assert_rejected(locked, Code::ResourceExhausted, reasons::ACCOUNT_LOCKED);
    login_from(&app, "198.51.100.2", "owner", PASSWORD)
        .await
        .expect("the owner, elsewhere, logs in");
}

async fn many_addresses_meet_the_account_wide_ceiling(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.register("target").await;
    // 20 failures (the account-wide ceiling), 4 from each of 5 addresses: none of them is
    // locked by its own count.
    for attempt in 0..20 {
        let address = format!("203.0.113.{}", attempt % 5);
        let guess = login_from(&app, &address, "target", "Wrong1234").await;
        assert_rejected(guess, Code::Unauthenticated, reasons::INVALID_CREDENTIALS);
    }
    let locked = login_from(&app, "198.51.100.9", "target", PASSWORD).await;
    assert_rejected(locked, Code::ResourceExhausted, reasons::ACCOUNT_LOCKED);
}

async fn unknown_names_lock_exactly_like_known_ones(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.register("known").await;
    let mut answers = Vec::new();
    for name in ["known", "nobody-by-this-name"] {
        let mut codes = Vec::new();
        for _ in 0..7 {
            let status = login_from(&app, "203.0.113.1", name, "Wrong1234")
                .await
                .expect_err("a wrong password");
            codes.push((status.code(), reason(&status)));
        }
        answers.push(codes);
    }
    assert_eq!(answers[0], answers[1], "the two cannot be told apart");
    assert_eq!(
        answers[0][5],
        (Code::ResourceExhausted, reasons::ACCOUNT_LOCKED.to_owned())
    );
}

async fn staff_cannot_take_over_a_superuser(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let root = app.admin_token().await;
    let superuser_id = app.validate(&root).await.unwrap().user.unwrap().id;
    let staff = app.staff_token(&root, "staffer").await;
    let takeovers = [
        pb::UpdateUserRequest {
            password: Some("Taken0ver1".into()),
            ..Default::default()
        },
        pb::UpdateUserRequest {
            is_active: Some(false),
            ..Default::default()
        },
        pb::UpdateUserRequest {
            is_staff: Some(false),
            ..Default::default()
        },
        pb::UpdateUserRequest {
            role: pb::Role::Clerk.into(),
            ..Default::default()
        },
        // Its login identifiers: an address of the staff's own would receive its password
        // reset (found by the second review).
        pb::UpdateUserRequest {
            email: Some("staff-owned@example.com".into()),
            ..Default::default()
        },
        pb::UpdateUserRequest {
            username: Some("renamed-root".into()),
            ..Default::default()
        },
        pb::UpdateUserRequest {
            clear_email: true,
            ..Default::default()
        },
    ];
    for takeover in takeovers {
        let request = pb::UpdateUserRequest {
            id: superuser_id,
            ..takeover
        };
        let refused = app.client().update_user(authed(&staff, request)).await;
        assert_rejected(refused, Code::PermissionDenied, reasons::PERMISSION_DENIED);
    }
    let delete = app
        .client()
        .delete_user(authed(&staff, pb::DeleteUserRequest { id: superuser_id }))
        .await;
    assert_rejected(delete, Code::PermissionDenied, reasons::PERMISSION_DENIED);
    // Nothing changed: the superuser still logs in with its password, as a superuser.
    let me = app.login("admin", PASSWORD).await.unwrap().user.unwrap();
    assert!(me.is_superuser && me.is_staff && me.is_active);
    assert_eq!(me.role(), pb::Role::Admin);
    assert!(app.validate(&root).await.is_ok());
    // What is no power may still be edited by staff, and a superuser may change a superuser.
    let renamed = app
        .client()
        .update_user(authed(
            &staff,
            pb::UpdateUserRequest {
                id: superuser_id,
                first_name: Some("Root".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.first_name, "Root");
    app.client()
        .update_user(authed(
            &root,
            pb::UpdateUserRequest {
                id: superuser_id,
                password: Some("Rotated123".into()),
                ..Default::default()
            },
        ))
        .await
        .expect("a superuser changes its own password");
}

async fn a_login_racing_a_password_change_never_keeps_its_token(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let (_, mut token) = app.user_with_token("racer").await;
    let mut password = PASSWORD.to_owned();
    let (mut both_won, mut overlapped) = (0, 0);
    for round in 0..30 {
        let next = format!("Round{round}pass");
        let (mut logger, mut changer) = (app.own_connection().await, app.own_connection().await);
        let login = {
            let password = password.clone();
            async move { logger.login(login_request("racer", &password)).await }
        };
        let change = {
            let (token, old, next) = (token.clone(), password.clone(), next.clone());
            async move {
                changer
                    .change_password(change_password(&token, &old, &next))
                    .await
            }
        };
        let (login, change, at_once) = race_pair(login, change).await;
        overlapped += usize::from(at_once);
        change.expect("the change succeeds");
        if let Ok(login) = login {
            // The login checked the old password, so it came before the change: whatever it
            // was issued must be revoked by the change.
            both_won += 1;
            let key = login.into_inner().token.unwrap().key;
            assert_rejected(
                app.validate(&key).await,
                Code::Unauthenticated,
                reasons::TOKEN_INVALID,
            );
        }
        password = next;
        token = app.token_for_password("racer", &password).await;
    }
    eprintln!("of 30 rounds, {overlapped} overlapped and {both_won} had both calls succeed");
    assert!(overlapped > 0, "no round's login and change overlapped");
}

async fn a_refresh_racing_logout_all_never_keeps_its_token(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.register("runner").await;
    let mut overlapped = 0;
    for _ in 0..30 {
        let (refreshed, other) = (app.token_for("runner").await, app.token_for("runner").await);
        let (mut refresher, mut revoker) = (app.own_connection().await, app.own_connection().await);
        let refresh = async move {
            refresher
                .refresh_token(authed(&refreshed, pb::RefreshTokenRequest {}))
                .await
        };
        let revoke_all = async move {
            revoker
                .revoke_all_tokens(authed(&other, pb::RevokeAllTokensRequest {}))
                .await
        };
        let (refresh, revoke_all, at_once) = race_pair(refresh, revoke_all).await;
        overlapped += usize::from(at_once);
        revoke_all.expect("logout-all succeeds");
        if let Ok(refresh) = refresh {
            let key = refresh.into_inner().token.unwrap().key;
            assert_rejected(
                app.validate(&key).await,
                Code::Unauthenticated,
                reasons::TOKEN_INVALID,
            );
        }
    }
    eprintln!("of 30 rounds, {overlapped} overlapped");
    assert!(
        overlapped > 0,
        "no round's refresh and logout-all overlapped"
    );
}

async fn two_admins_changing_different_fields_both_keep_their_change(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let user = app.register("edited").await;
    let mut overlapped = 0;
    for round in 0..20 {
        let edit = |field: &'static str, mut client: AuthServiceClient<Channel>| {
            let admin = admin.clone();
            let value = format!("{field}{round}");
            let request = match field {
                "first" => pb::UpdateUserRequest {
                    id: user.id,
                    first_name: Some(value),
                    ..Default::default()
                },
                _ => pb::UpdateUserRequest {
                    id: user.id,
                    last_name: Some(value),
                    ..Default::default()
                },
            };
            async move { client.update_user(authed(&admin, request)).await.unwrap() }
        };
        let (first, last) = (app.own_connection().await, app.own_connection().await);
        let (_, _, at_once) = race_pair(edit("first", first), edit("last", last)).await;
        overlapped += usize::from(at_once);
        let stored = app
            .client()
            .get_user(authed(&admin, pb::GetUserRequest { id: user.id }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (stored.first_name, stored.last_name),
            (format!("first{round}"), format!("last{round}"))
        );
    }
    assert!(overlapped > 0, "no round's two edits overlapped");
}

async fn a_session_is_not_refreshed(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.register("browser").await;
    let session = app.session_login("browser").await.session.unwrap().key;
    let refresh = app
        .client()
        .refresh_token(with_authorization(
            &format!("Session {session}"),
            pb::RefreshTokenRequest {},
        ))
        .await;
    assert_rejected(refresh, Code::Unauthenticated, reasons::CREDENTIALS_MISSING);
}

async fn over_the_per_user_limit_the_oldest_token_goes(db: TestDatabase) {
    let mut config = auth_service::Config::for_tests(db.url());
    config.token_limit_per_user = 3;
    let app = spawn_app_with(config).await;
    app.register("hoarder").await;
    let mut keys = Vec::new();
    for _ in 0..5 {
        keys.push(app.token_for("hoarder").await);
        app.advance(Duration::from_millis(1));
    }
    for old in &keys[..2] {
        assert_rejected(
            app.validate(old).await,
            Code::Unauthenticated,
            reasons::TOKEN_INVALID,
        );
    }
    for live in &keys[2..] {
        assert!(app.validate(live).await.is_ok());
    }
}

async fn a_full_hashing_queue_answers_unavailable_with_a_retry_delay(db: TestDatabase) {
    let mut config = auth_service::Config::for_tests(db.url());
    // Real-cost hashes, one at a time, nobody waiting.
    config.argon2.memory_kib = 65536;
    config.argon2.iterations = 4;
    config.hashing_concurrency = 1;
    config.hashing_queue_limit = 0;
    // Concurrent right passwords would otherwise meet the lockout, which claims first.
    config.lockout_threshold = 0;
    let app = spawn_app_with(config).await;
    app.register("busy").await;
    let results = app
        .race(6, |mut client, _| async move {
            client.login(login_request("busy", PASSWORD)).await
        })
        .await;
    let mut unavailable = 0;
    for result in results {
        match result {
            Ok(_) => {}
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                let retry = status.get_error_details().retry_info().cloned();
                assert!(retry.and_then(|r| r.retry_delay).is_some(), "{status:?}");
                unavailable += 1;
            }
        }
    }
    assert!(unavailable >= 1, "some logins are turned away, not queued");
}

service_kit::on_both_backends!(
    wrong_old_passwords_count_toward_the_lockout,
    a_guesser_at_one_address_does_not_lock_the_owner_out_elsewhere,
    many_addresses_meet_the_account_wide_ceiling,
    unknown_names_lock_exactly_like_known_ones,
    staff_cannot_take_over_a_superuser,
    a_login_racing_a_password_change_never_keeps_its_token,
    a_refresh_racing_logout_all_never_keeps_its_token,
    two_admins_changing_different_fields_both_keep_their_change,
    a_session_is_not_refreshed,
    over_the_per_user_limit_the_oldest_token_goes,
    a_full_hashing_queue_answers_unavailable_with_a_retry_delay,
);
