//! The token lifecycle: validate, expire, refresh, revoke, and what revokes tokens indirectly.

use std::time::Duration;

use proto::{auth::v1 as pb, reasons};
use service_kit::testing::TestDatabase;
use tonic::Code;

use crate::helpers::*;

async fn the_whole_flow_register_login_validate_refresh_revoke(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let (user, key) = app.user_with_token("frank").await;
    assert_eq!(key.len(), 40);
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );

    let validated = app.validate(&key).await.unwrap();
    let validated_user = validated.user.clone().unwrap();
    assert_eq!(validated_user.id, user.id);
    assert_eq!(validated_user.role(), pb::Role::Clerk);
    assert_eq!(validated.kind(), pb::CredentialKind::Token);
    assert!(validated.expires_at.unwrap().seconds > 0);

    let mut client = app.client();
    let me = client
        .get_current_user(authed(&key, pb::GetCurrentUserRequest {}))
        .await
        .unwrap();
    assert_eq!(me.into_inner().id, user.id);

    let refreshed = app.refresh(&key).await.unwrap();
    assert_ne!(refreshed, key);
    assert!(app.validate(&refreshed).await.is_ok());

    client
        .revoke_token(authed(&refreshed, pb::RevokeTokenRequest {}))
        .await
        .unwrap();
    assert_rejected(
        app.validate(&refreshed).await,
        Code::Unauthenticated,
        reasons::TOKEN_INVALID,
    );
}

async fn malformed_and_missing_credentials_are_told_apart(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let mut client = app.client();
    let missing = client.get_current_user(pb::GetCurrentUserRequest {}).await;
    assert_rejected(missing, Code::Unauthenticated, reasons::CREDENTIALS_MISSING);
    let basic = client
        .get_current_user(with_authorization(
            "Basic abc",
            pb::GetCurrentUserRequest {},
        ))
        .await;
    assert_rejected(basic, Code::Unauthenticated, reasons::CREDENTIALS_MISSING);
    for value in [
        "Token",
        "Token a b",
        &format!("Bearer {}", "0".repeat(40)),
        "Token not-hex",
    ] {
        let result = client
            .get_current_user(with_authorization(value, pb::GetCurrentUserRequest {}))
            .await;
        assert_rejected(result, Code::Unauthenticated, reasons::TOKEN_INVALID);
    }
}

async fn an_expired_token_is_reported_once_then_gone(db: TestDatabase) {
    let mut config = auth_service::Config::for_tests(db.url());
    config.token_ttl = Duration::from_secs(60);
    let app = spawn_app_with(config).await;
    let (_, key) = app.user_with_token("gina").await;
    app.advance(Duration::from_secs(59));
    assert!(app.validate(&key).await.is_ok());
    app.advance(Duration::from_secs(1));
    assert_rejected(
        app.validate(&key).await,
        Code::Unauthenticated,
        reasons::TOKEN_EXPIRED,
    );
    assert_rejected(
        app.validate(&key).await,
        Code::Unauthenticated,
        reasons::TOKEN_INVALID,
    );
    // An expired key cannot be refreshed either.
    let (_, other) = app.user_with_token("gina2").await;
    app.advance(Duration::from_secs(61));
    assert_rejected(
        app.refresh(&other).await,
        Code::Unauthenticated,
        reasons::TOKEN_EXPIRED,
    );
}

async fn the_background_purge_clears_keys_expired_over_a_week_ago(db: TestDatabase) {
    let mut config = auth_service::Config::for_tests(db.url());
    config.token_ttl = Duration::from_secs(60);
    config.purge_interval = Duration::from_millis(20);
    let app = spawn_app_with(config).await;
    let (_, old) = app.user_with_token("olga").await;
    app.advance(Duration::from_secs(8 * 24 * 3600));
    let recent = app.token_for("olga").await;
    app.advance(Duration::from_secs(2 * 24 * 3600));
    // No login and no presenting (which deletes an expired key itself): the purge runs by
    // itself and leaves only the key that expired two days ago.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db.url()).await.unwrap();
    let mut left = i64::MAX;
    for _ in 0..250 {
        left = sqlx::query_scalar("SELECT COUNT(*) FROM credentials")
            .fetch_one(&pool)
            .await
            .unwrap();
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 1, "the key expired over a week ago is purged");
    assert_rejected(
        app.validate(&old).await,
        Code::Unauthenticated,
        reasons::TOKEN_INVALID,
    );
    // Expired two days ago: still told apart.
    assert_rejected(
        app.validate(&recent).await,
        Code::Unauthenticated,
        reasons::TOKEN_EXPIRED,
    );
}

async fn racing_refreshes_of_one_token_have_exactly_one_winner(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let (_, key) = app.user_with_token("hank").await;
    let results = app
        .race(8, |mut client, _| {
            let request = authed(&key, pb::RefreshTokenRequest {});
            async move { client.refresh_token(request).await }
        })
        .await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for loser in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(loser.code(), Code::Unauthenticated);
        assert_eq!(reason(loser), reasons::TOKEN_INVALID);
    }
    let new_key = winners[0].get_ref().token.as_ref().unwrap().key.clone();
    assert!(
        app.validate(&new_key).await.is_ok(),
        "the winner's token stays valid"
    );
}

async fn reusing_a_refreshed_away_token_revokes_its_successor(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let (_, stolen) = app.user_with_token("ivy").await;
    let first = app.refresh(&stolen).await.unwrap();
    let second = app.refresh(&first).await.unwrap();
    let unrelated = app.token_for("ivy").await;

    // Within the grace period a refreshed-away key is only invalid (a racing refresh of the
    // same client); the chain survives.
    assert_rejected(
        app.validate(&first).await,
        Code::Unauthenticated,
        reasons::TOKEN_INVALID,
    );
    assert!(app.validate(&second).await.is_ok());

    app.advance(Duration::from_secs(3));
    assert_rejected(
        app.validate(&stolen).await,
        Code::Unauthenticated,
        reasons::TOKEN_INVALID,
    );
    assert_rejected(
        app.validate(&second).await,
        Code::Unauthenticated,
        reasons::TOKEN_INVALID,
    );
    assert!(
        app.validate(&unrelated).await.is_ok(),
        "other logins are not part of the chain"
    );
}

async fn logout_everywhere_revokes_every_credential(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let (_, first) = app.user_with_token("jack").await;
    let second = app.token_for("jack").await;
    let (_, bystander) = app.user_with_token("kate").await;
    let revoked = app
        .client()
        .revoke_all_tokens(authed(&first, pb::RevokeAllTokensRequest {}))
        .await
        .unwrap()
        .into_inner()
        .revoked;
    assert_eq!(revoked, 2);
    for key in [&first, &second] {
        assert_rejected(
            app.validate(key).await,
            Code::Unauthenticated,
            reasons::TOKEN_INVALID,
        );
    }
    assert!(app.validate(&bystander).await.is_ok());
}

async fn a_password_change_revokes_all_other_tokens(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let (_, used) = app.user_with_token("liam").await;
    let other = app.token_for("liam").await;
    let mut client = app.client();
    let wrong_old = client
        .change_password(authed(
            &used,
            pb::ChangePasswordRequest {
                old_password: Some("Nope12345".into()),
                new_password: Some("NewPassword1".into()),
            },
        ))
        .await;
    assert_eq!(
        field_errors(wrong_old),
        [pair(
            "old_password",
            "Your old password was entered incorrectly. Please enter it again."
        )]
    );
    let weak_new = client
        .change_password(authed(
            &used,
            pb::ChangePasswordRequest {
                old_password: Some(PASSWORD.into()),
                new_password: Some("weakweak".into()),
            },
        ))
        .await;
    assert_eq!(
        field_errors(weak_new),
        [pair(
            "new_password",
            "Password must contain at least one numeral."
        )]
    );

    client
        .change_password(authed(
            &used,
            pb::ChangePasswordRequest {
                old_password: Some(PASSWORD.into()),
                new_password: Some("NewPassword1".into()),
            },
        ))
        .await
        .unwrap();
    assert!(
        app.validate(&used).await.is_ok(),
        "the token used for the change stays"
    );
    assert_rejected(
        app.validate(&other).await,
        Code::Unauthenticated,
        reasons::TOKEN_INVALID,
    );
    assert_rejected(
        app.login("liam", PASSWORD).await,
        Code::Unauthenticated,
        reasons::INVALID_CREDENTIALS,
    );
    assert!(app.login("liam", "NewPassword1").await.is_ok());
}

async fn a_deleted_users_tokens_are_gone(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let (user, key) = app.user_with_token("mia").await;
    app.client()
        .delete_user(authed(&admin, pb::DeleteUserRequest { id: user.id }))
        .await
        .unwrap();
    assert_rejected(
        app.validate(&key).await,
        Code::Unauthenticated,
        reasons::TOKEN_INVALID,
    );
}

service_kit::on_both_backends!(
    the_whole_flow_register_login_validate_refresh_revoke,
    malformed_and_missing_credentials_are_told_apart,
    an_expired_token_is_reported_once_then_gone,
    the_background_purge_clears_keys_expired_over_a_week_ago,
    racing_refreshes_of_one_token_have_exactly_one_winner,
    reusing_a_refreshed_away_token_revokes_its_successor,
    logout_everywhere_revokes_every_credential,
    a_password_change_revokes_all_other_tokens,
    a_deleted_users_tokens_are_gone,
);
