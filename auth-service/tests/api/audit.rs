//! The audit trail's recording: every security event appears after its action with who acted,
//! on whom, from which client and in which request; a change rolled back leaves none; and no
//! event holds a password, key or digest.

use std::{collections::BTreeSet, time::Duration};

use proto::auth::v1::{self as pb, auth_service_client::AuthServiceClient};
use serde_json::{Value, json};
use service_kit::testing::TestDatabase;
use sha2::{Digest, Sha256};
use tonic::{Code, Request, transport::Channel};

use crate::helpers::*;

/// The client address the calls name, as the gateway would.
const CLIENT: &str = "203.0.113.7";

/// `message` as the gateway sends it: for client [`CLIENT`], in request `request_id`, with
/// `key`'s credential if any.
pub fn traced<T>(key: Option<&str>, request_id: &str, message: T) -> Request<T> {
    let mut request = from_address(CLIENT, message);
    let metadata = request.metadata_mut();
    metadata.insert("x-request-id", request_id.parse().unwrap());
    if let Some(key) = key {
        metadata.insert("authorization", format!("Token {key}").parse().unwrap());
    }
    request
}

/// Every event of the trail, newest first, read by the superuser `admin`.
pub async fn trail(client: &mut AuthServiceClient<Channel>, admin: &str) -> Vec<pb::AuditEvent> {
    let request = pb::ListAuditEventsRequest::default();
    client
        .list_audit_events(authed(admin, request))
        .await
        .expect("a superuser reads the trail")
        .into_inner()
        .events
}

/// The one event of `kind` made by request `request_id`.
#[track_caller]
fn only<'a>(events: &'a [pb::AuditEvent], kind: &str, request_id: &str) -> &'a pb::AuditEvent {
    let found: Vec<_> = events
        .iter()
        .filter(|event| event.r#type == kind && event.request_id.as_deref() == Some(request_id))
        .collect();
    assert_eq!(found.len(), 1, "{kind} of {request_id}: {events:#?}");
    found[0]
}

pub fn detail(event: &pb::AuditEvent) -> Value {
    serde_json::from_str(&event.detail).expect("the detail is JSON")
}

/// Asserts who acted, on whom, from where and how it ended.
#[track_caller]
fn assert_event(
    event: &pb::AuditEvent,
    (actor, target): (Option<i64>, Option<i64>),
    outcome: &str,
) {
    assert_eq!(event.actor_id, actor, "{event:?}");
    assert_eq!(event.target_id, target, "{event:?}");
    assert_eq!(event.client_address.as_deref(), Some(CLIENT), "{event:?}");
    assert_eq!(event.outcome, outcome, "{event:?}");
    assert!(event.time.is_some(), "{event:?}");
}

fn token_of(response: pb::LoginResponse) -> String {
    response.token.expect("a token").key
}

async fn every_security_event_is_recorded_with_its_actor_target_client_and_request(
    db: TestDatabase,
) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let admin_id = app.validate(&admin).await.unwrap().user.unwrap().id;
    let mut client = app.client();
    let mut secrets = vec![PASSWORD.to_owned(), admin.clone()];

    let alice = client
        .register(traced(None, "r-register", registration("alice")))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
        .id;
    let wrong = "Wrong-guess-42";
    secrets.push(wrong.to_owned());
    let failed = client
        .login(traced(None, "r-wrong", login_request("alice", wrong)))
        .await;
    assert!(failed.is_err());
    let unknown = client
        .login(traced(None, "r-unknown", login_request("nobody", wrong)))
        .await;
    assert!(unknown.is_err());
    let first = client
        .login(traced(None, "r-login", login_request("alice", PASSWORD)))
        .await
        .map(|response| token_of(response.into_inner()))
        .unwrap();
    let refreshed = client
        .refresh_token(traced(
            Some(&first),
            "r-refresh",
            pb::RefreshTokenRequest {},
        ))
        .await
        .unwrap()
        .into_inner()
        .token
        .unwrap()
        .key;
    // Past the grace, the refreshed-away key comes back: stolen.
    app.advance(Duration::from_secs(3));
    let reused = pb::ValidateTokenRequest {
        key: first.clone(),
        kind: pb::CredentialKind::Token.into(),
    };
    assert!(
        client
            .validate_token(traced(None, "r-reuse", reused))
            .await
            .is_err()
    );
    secrets.extend([first, refreshed]);

    let second = app.token_for("alice").await;
    let change = |old: &str, new: &str| pb::ChangePasswordRequest {
        old_password: Some(old.to_owned()),
        new_password: Some(new.to_owned()),
    };
    let new_password = "Changed-pass-77";
    secrets.push(new_password.to_owned());
    let refused = client
        .change_password(traced(
            Some(&second),
            "r-change-wrong",
            change(wrong, new_password),
        ))
        .await;
    assert!(refused.is_err());
    client
        .change_password(traced(
            Some(&second),
            "r-change",
            change(PASSWORD, new_password),
        ))
        .await
        .unwrap();
    client
        .revoke_token(traced(Some(&second), "r-logout", pb::RevokeTokenRequest {}))
        .await
        .unwrap();
    let third = app.token_for_password("alice", new_password).await;
    client
        .revoke_all_tokens(traced(
            Some(&third),
            "r-logout-all",
            pb::RevokeAllTokensRequest {},
        ))
        .await
        .unwrap();
    secrets.extend([second, third]);

    let new_user = pb::CreateUserRequest {
        username: Some("bob".into()),
        password: Some(PASSWORD.into()),
        ..Default::default()
    };
    let bob = client
        .create_user(traced(Some(&admin), "r-create", new_user))
        .await
        .unwrap()
        .into_inner()
        .id;
    let bob_password = "Bobs-new-pass-9";
    secrets.push(bob_password.to_owned());
    let promote = pb::UpdateUserRequest {
        id: bob,
        first_name: Some("Bob".into()),
        role: pb::Role::Manager.into(),
        password: Some(bob_password.into()),
        ..Default::default()
    };
    client
        .update_user(traced(Some(&admin), "r-update", promote))
        .await
        .unwrap();
    let deactivate = pb::UpdateUserRequest {
        id: bob,
        is_active: Some(false),
        ..Default::default()
    };
    client
        .update_user(traced(Some(&admin), "r-deactivate", deactivate))
        .await
        .unwrap();
    let inactive = client
        .login(traced(
            None,
            "r-inactive",
            login_request("bob", bob_password),
        ))
        .await;
    assert!(inactive.is_err());
    let reactivate = pb::UpdateUserRequest {
        id: bob,
        is_active: Some(true),
        ..Default::default()
    };
    client
        .update_user(traced(Some(&admin), "r-reactivate", reactivate))
        .await
        .unwrap();
    client
        .delete_user(traced(
            Some(&admin),
            "r-delete",
            pb::DeleteUserRequest { id: bob },
        ))
        .await
        .unwrap();

    // The sixth guess at carol from one address waits out the lock the fifth started.
    let carol = app.register("carol").await.id;
    for i in 1..=5 {
        let request = traced(None, &format!("r-guess-{i}"), login_request("carol", wrong));
        assert!(client.login(request).await.is_err());
    }
    let locked = client
        .login(traced(None, "r-locked", login_request("carol", wrong)))
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted);

    let events = trail(&mut client, &admin).await;
    let none = None;
    let (alice, bob, admin_id) = (Some(alice), Some(bob), Some(admin_id));

    let created = only(&events, "user.created", "r-register");
    assert_event(created, (none, alice), "success");
    assert_eq!(detail(created)["source"], "register");
    let wrong_login = only(&events, "login.failed", "r-wrong");
    assert_event(wrong_login, (none, alice), "failure");
    assert_eq!(
        detail(wrong_login),
        json!({ "by": "username", "reason": "wrong_password" })
    );
    let unknown = only(&events, "login.failed", "r-unknown");
    assert_event(unknown, (none, none), "failure");
    assert_eq!(detail(unknown)["reason"], "unknown_account");
    assert_event(
        only(&events, "login.succeeded", "r-login"),
        (alice, alice),
        "success",
    );
    assert_event(
        only(&events, "token.refreshed", "r-refresh"),
        (alice, alice),
        "success",
    );
    let reuse = only(&events, "token.reuse_detected", "r-reuse");
    assert_event(reuse, (none, alice), "failure");
    assert_eq!(detail(reuse)["credentials_revoked"], 2);
    let change_refused = only(&events, "password.changed", "r-change-wrong");
    assert_event(change_refused, (alice, alice), "failure");
    assert_eq!(detail(change_refused)["reason"], "wrong_old_password");
    assert_event(
        only(&events, "password.changed", "r-change"),
        (alice, alice),
        "success",
    );
    assert_event(
        only(&events, "logout", "r-logout"),
        (alice, alice),
        "success",
    );
    let logout_all = only(&events, "logout.all", "r-logout-all");
    assert_event(logout_all, (alice, alice), "success");
    assert_eq!(detail(logout_all)["credentials_revoked"], 1);

    let created = only(&events, "user.created", "r-create");
    assert_event(created, (admin_id, bob), "success");
    assert_eq!(detail(created)["role"], "CLERK");
    let updated = only(&events, "user.updated", "r-update");
    assert_event(updated, (admin_id, bob), "success");
    assert_eq!(
        detail(updated)["fields"],
        json!(["first_name", "role", "password"])
    );
    assert_eq!(
        detail(only(&events, "password.changed", "r-update"))["by"],
        "admin"
    );
    let role = only(&events, "user.role_changed", "r-update");
    assert_eq!(
        detail(role),
        json!({ "role": { "from": "CLERK", "to": "MANAGER" } })
    );
    assert_eq!(
        detail(only(&events, "user.updated", "r-deactivate"))["fields"],
        json!(["is_active"])
    );
    assert_event(
        only(&events, "user.deactivated", "r-deactivate"),
        (admin_id, bob),
        "success",
    );
    let reactivated = only(&events, "user.reactivated", "r-reactivate");
    assert_event(reactivated, (admin_id, bob), "success");
    let inactive = only(&events, "login.failed", "r-inactive");
    assert_event(inactive, (none, bob), "failure");
    assert_eq!(detail(inactive)["reason"], "inactive");
    let deleted = only(&events, "user.deleted", "r-delete");
    assert_event(deleted, (admin_id, bob), "success");
    assert_eq!(detail(deleted)["username"], "bob");

    assert_eq!(
        detail(only(&events, "login.failed", "r-guess-5"))["locks_for_seconds"],
        1
    );
    let locked = only(&events, "login.locked", "r-locked");
    assert_event(locked, (none, Some(carol)), "failure");

    // The console's events: no actor, no client, no request.
    let console = events
        .iter()
        .find(|event| event.r#type == "user.created" && event.request_id.is_none())
        .expect("createsuperuser's event");
    assert_eq!((console.actor_id, console.target_id), (None, admin_id));
    assert_eq!(detail(console)["source"], "console");

    // Every type this test made, and not one event holds a secret or a key's digest.
    let kinds: BTreeSet<&str> = events.iter().map(|event| event.r#type.as_str()).collect();
    let made = [
        "login.failed",
        "login.locked",
        "login.succeeded",
        "logout",
        "logout.all",
        "password.changed",
        "token.refreshed",
        "token.reuse_detected",
        "user.created",
        "user.deactivated",
        "user.deleted",
        "user.reactivated",
        "user.role_changed",
        "user.updated",
    ];
    assert_eq!(kinds, BTreeSet::from(made));
    let digests: Vec<String> = secrets
        .iter()
        .map(|secret| hex::encode(Sha256::digest(secret.as_bytes())))
        .collect();
    let whole = format!("{events:?}");
    for secret in secrets.iter().chain(&digests) {
        assert!(!whole.contains(secret.as_str()), "{secret} is in the trail");
    }
}

/// An import is one event, with its counts, recorded by the console.
async fn an_import_is_one_event_with_its_counts(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/django/auth_users.json");
    let (_, report) = auth_service::import::import_django_file(&app.config, &fixture, false)
        .await
        .expect("the fixture imports");
    let events = trail(&mut app.client(), &admin).await;
    let imported: Vec<_> = events
        .iter()
        .filter(|event| event.r#type == "users.imported")
        .collect();
    assert_eq!(imported.len(), 1, "{events:#?}");
    let counts = detail(imported[0]);
    assert_eq!(counts["users_imported"], json!(report.users_imported));
    assert_eq!(counts["tokens_imported"], json!(report.tokens_imported));
    assert_eq!(counts["keep_ids"], false);
    assert_eq!(imported[0].actor_id, None);
}

/// A create refused as a duplicate, an update refused by a unique constraint and a refused
/// delete roll back, and leave no event.
async fn a_change_rolled_back_leaves_no_event(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let mut client = app.client();
    let erin = app.register("erin").await.id;
    app.register("fred").await;
    let duplicate = pb::CreateUserRequest {
        username: Some("ERIN".into()),
        password: Some(PASSWORD.into()),
        ..Default::default()
    };
    let refused = client
        .create_user(traced(Some(&admin), "r-duplicate", duplicate))
        .await;
    assert!(!field_errors(refused).is_empty());
    let taken = pb::UpdateUserRequest {
        id: erin,
        first_name: Some("Erin".into()),
        username: Some("fred".into()),
        ..Default::default()
    };
    let refused = client
        .update_user(traced(Some(&admin), "r-taken", taken))
        .await;
    assert!(!field_errors(refused).is_empty());

    let events = trail(&mut client, &admin).await;
    let made_by_refusals: Vec<_> = events
        .iter()
        .filter(|event| {
            event
                .request_id
                .as_deref()
                .is_some_and(|id| id.starts_with("r-"))
        })
        .collect();
    assert!(made_by_refusals.is_empty(), "{made_by_refusals:#?}");
    assert_eq!(
        events
            .iter()
            .filter(|event| event.r#type == "user.created")
            .count(),
        3,
        "the superuser, erin and fred: {events:#?}"
    );
}

service_kit::on_both_backends!(
    every_security_event_is_recorded_with_its_actor_target_client_and_request,
    an_import_is_one_event_with_its_counts,
    a_change_rolled_back_leaves_no_event,
);
