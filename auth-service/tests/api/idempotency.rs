//! The admin writes with `idempotency-key` metadata: CreateUser, UpdateUser and DeleteUser
//! repeated get the first answer and apply once, also when the repeats race; a key reused with
//! another request is refused.

use proto::{
    auth::v1 as pb,
    idempotency::{METADATA_KEY, REPLAYED_KEY, REUSED},
};
use service_kit::testing::TestDatabase;
use tonic::{Code, Request};

use crate::helpers::*;

service_kit::on_both_backends!(
    a_repeated_create_user_makes_one_user,
    repeated_updates_and_deletes_are_answered_alike,
    racing_duplicates_of_create_user_apply_once,
);

/// `message` from `token` with `idempotency-key: key`.
fn keyed<T>(token: &str, key: &str, message: T) -> Request<T> {
    let mut request = authed(token, message);
    request
        .metadata_mut()
        .insert(METADATA_KEY, key.parse().expect("ASCII metadata"));
    request
}

fn new_user(username: &str) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        username: Some(username.into()),
        password: Some(PASSWORD.into()),
        role: pb::Role::Clerk.into(),
        ..Default::default()
    }
}

async fn user_count(app: &TestApp, admin: &str) -> u64 {
    app.client()
        .list_users(authed(admin, pb::ListUsersRequest::default()))
        .await
        .expect("the admin lists users")
        .into_inner()
        .total_count
}

async fn a_repeated_create_user_makes_one_user(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let mut client = app.client();
    let first = client
        .create_user(keyed(&admin, "new-clerk", new_user("clerk")))
        .await
        .expect("created");
    let again = client
        .create_user(keyed(&admin, "new-clerk", new_user("clerk")))
        .await
        .expect("answered, not refused as a duplicate username");
    assert!(first.metadata().get(REPLAYED_KEY).is_none());
    assert_eq!(again.metadata().get(REPLAYED_KEY).unwrap(), "true");
    assert_eq!(again.get_ref(), first.get_ref(), "the same user, same id");
    assert_eq!(user_count(&app, &admin).await, 2, "the admin and one clerk");

    let reused = client
        .create_user(keyed(&admin, "new-clerk", new_user("another")))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&reused), REUSED);
    assert_eq!(user_count(&app, &admin).await, 2);

    // Without a key, the repeat is a second creation, refused as such.
    let duplicate = client.create_user(authed(&admin, new_user("clerk"))).await;
    assert_eq!(
        field_errors(duplicate),
        [pair(
            "username",
            "A user with that username already exists."
        )]
    );
}

async fn repeated_updates_and_deletes_are_answered_alike(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let (clerk, _) = app.user_with_token("clerk").await;
    let mut client = app.client();
    let rename = || {
        keyed(
            &admin,
            "rename",
            pb::UpdateUserRequest {
                id: clerk.id,
                first_name: Some("Clara".into()),
                ..Default::default()
            },
        )
    };
    let renamed = client.update_user(rename()).await.expect("updated");
    let again = client.update_user(rename()).await.expect("answered");
    assert_eq!(again.get_ref(), renamed.get_ref());

    let delete = || keyed(&admin, "delete", pb::DeleteUserRequest { id: clerk.id });
    client.delete_user(delete()).await.expect("deleted");
    client
        .delete_user(delete())
        .await
        .expect("the repeat succeeds as the first did");
    let unkeyed = client
        .delete_user(authed(&admin, pb::DeleteUserRequest { id: clerk.id }))
        .await
        .unwrap_err();
    assert_eq!(unkeyed.code(), Code::NotFound, "the user is gone");
}

async fn racing_duplicates_of_create_user_apply_once(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let answers = app
        .race(8, |mut client, _| {
            let request = keyed(&admin, "one-clerk", new_user("clerk"));
            async move { client.create_user(request).await.map(|r| r.into_inner()) }
        })
        .await;
    let first = answers[0].as_ref().expect("answered").clone();
    for answer in &answers {
        assert_eq!(
            answer.as_ref().expect("every duplicate is answered"),
            &first
        );
    }
    assert_eq!(user_count(&app, &admin).await, 2, "the admin and one clerk");
}
