//! Login by username or email, its failures, and sessions.

use proto::{auth::v1 as pb, reasons};
use service_kit::testing::TestDatabase;
use tonic::Code;

use crate::helpers::*;

async fn login_by_username_or_email_ignoring_case(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.client()
        .register(pb::RegisterRequest {
            username: Some("Bob".into()),
            email: Some("bob@example.com".into()),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let by_name = app.login("bob", PASSWORD).await.unwrap();
    let user = by_name.user.unwrap();
    assert_eq!(user.username.as_deref(), Some("Bob"));
    assert!(user.last_login.is_some());
    assert!(by_name.session.is_none());

    let by_email = app
        .client()
        .login(pb::LoginRequest {
            email: Some("BOB@example.com".into()),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (first, second) = (by_name.token.unwrap().key, by_email.token.unwrap().key);
    assert_ne!(first, second, "one token per login, both live");
    assert!(app.validate(&first).await.is_ok());
    assert!(app.validate(&second).await.is_ok());
}

async fn wrong_password_and_unknown_user_look_the_same(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.register("carol").await;
    assert_rejected(
        app.login("carol", "Wrong1234").await,
        Code::Unauthenticated,
        reasons::INVALID_CREDENTIALS,
    );
    assert_rejected(
        app.login("nobody", PASSWORD).await,
        Code::Unauthenticated,
        reasons::INVALID_CREDENTIALS,
    );
    let missing = app.client().login(pb::LoginRequest::default()).await;
    assert_eq!(
        field_errors(missing),
        [
            pair("username", "This field is required."),
            pair("password", "This field is required.")
        ]
    );
}

async fn set_active(app: &TestApp, admin: &str, id: i64, is_active: bool) {
    app.client()
        .update_user(authed(
            admin,
            pb::UpdateUserRequest {
                id,
                is_active: Some(is_active),
                ..Default::default()
            },
        ))
        .await
        .expect("the admin updates the user");
}

async fn a_deactivated_account_is_told_only_after_the_right_password(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let (user, token) = app.user_with_token("dave").await;
    set_active(&app, &admin, user.id, false).await;
    assert_rejected(
        app.login("dave", "Wrong1234").await,
        Code::Unauthenticated,
        reasons::INVALID_CREDENTIALS,
    );
    assert_rejected(
        app.login("dave", PASSWORD).await,
        Code::PermissionDenied,
        reasons::USER_INACTIVE,
    );
    // Its existing tokens stop working at once.
    assert_rejected(
        app.validate(&token).await,
        Code::Unauthenticated,
        reasons::USER_INACTIVE,
    );
    // Reactivated, it starts from a clean slate: the old token never comes back.
    set_active(&app, &admin, user.id, true).await;
    assert_rejected(
        app.validate(&token).await,
        Code::Unauthenticated,
        reasons::TOKEN_INVALID,
    );
    let fresh = app.token_for("dave").await;
    assert!(app.validate(&fresh).await.is_ok());
    // Setting an active user active again revokes nothing.
    set_active(&app, &admin, user.id, true).await;
    assert!(app.validate(&fresh).await.is_ok());
}

async fn sessions_are_a_separate_kind_of_credential(db: TestDatabase) {
    let app = spawn_app(&db).await;
    app.register("erin").await;
    let response = app.session_login("erin").await;
    let session = response.session.unwrap();
    assert_eq!(session.kind(), pb::CredentialKind::Session);
    let token = response.token.unwrap();
    assert_ne!(session.key, token.key);

    // A session key is no token, and a token is no session.
    assert_rejected(
        app.validate(&session.key).await,
        Code::Unauthenticated,
        reasons::TOKEN_INVALID,
    );
    let as_session = app
        .client()
        .validate_token(pb::ValidateTokenRequest {
            key: session.key.clone(),
            kind: pb::CredentialKind::Session.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(as_session.kind(), pb::CredentialKind::Session);
    let me = app
        .client()
        .get_current_user(with_authorization(
            &format!("Session {}", session.key),
            pb::GetCurrentUserRequest {},
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.username.as_deref(), Some("erin"));

    // Revoking the session leaves the token alone.
    app.client()
        .revoke_token(with_authorization(
            &format!("session {}", session.key),
            pb::RevokeTokenRequest {},
        ))
        .await
        .unwrap();
    assert!(app.validate(&token.key).await.is_ok());
}

service_kit::on_both_backends!(
    login_by_username_or_email_ignoring_case,
    wrong_password_and_unknown_user_look_the_same,
    a_deactivated_account_is_told_only_after_the_right_password,
    sessions_are_a_separate_kind_of_credential,
);
