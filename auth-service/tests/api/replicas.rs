//! Statelessness: replicas sharing one database agree at once.

use proto::{auth::v1 as pb, reasons};
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

service_kit::on_both_backends!(two_replicas_on_one_database_agree_at_once);
