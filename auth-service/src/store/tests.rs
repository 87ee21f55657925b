//! The store's guards against a write that lands between a read and the write that depends on
//! it. Each race is set up in the losing order, so every run meets the guard (a racing test
//! meets it only when the race falls that way): on both backends.

use service_kit::testing::TestDatabase;

use super::{CredentialLimit, NewCredential, NewUser, Store, UserLookup};
use crate::{
    clock::UnixMicros,
    domain::{
        CredentialKind, HashedPassword, PersonName, Profile, Role, TokenKey, Username,
        audit::{Event, EventType, Origin},
    },
};

service_kit::on_both_backends!(
    a_credential_is_never_issued_past_a_withdrawal_it_did_not_see,
    a_rehash_never_overwrites_a_password_changed_meanwhile,
);

/// A store with one user, whose password hash is `first`.
async fn store_with_user(db: &TestDatabase) -> (Store, i64) {
    let store = Store::connect(db.url()).await.expect("the store opens");
    let profile = Profile {
        username: Some(Username::parse("racer").unwrap()),
        email: None,
        first_name: PersonName::parse("").unwrap(),
        last_name: PersonName::parse("").unwrap(),
        role: Role::Clerk,
        is_staff: false,
        is_superuser: false,
        is_active: true,
    };
    let user = NewUser {
        profile,
        password_hash: hash("first"),
    };
    let mut connection = store.pool().acquire().await.unwrap();
    let user = Store::insert_user(&mut connection, user, event(EventType::UserCreated))
        .await
        .expect("the user is stored");
    (store, user.id)
}

/// An event of `kind` at time 0, from nowhere.
fn event(kind: EventType) -> Event {
    Event::new(kind, UnixMicros(0), &Origin::default())
}

fn hash(text: &str) -> HashedPassword {
    HashedPassword::new(text.to_owned())
}

fn token_of(user_id: i64) -> NewCredential {
    let digest = TokenKey::generate().digest();
    NewCredential {
        family: digest.0.clone(),
        digest,
        user_id,
        kind: CredentialKind::Token,
        created_at: UnixMicros(0),
        expires_at: UnixMicros(i64::MAX / 2),
    }
}

/// What a login or a refresh reads: the credentials version its issue is conditional on.
async fn version_of(store: &Store, id: i64) -> i64 {
    let record = store.login_record(&UserLookup::Id(id)).await.unwrap();
    record.expect("the user exists").credentials_version
}

/// A login reads the version, a password change (which withdraws every credential) commits,
/// then the login issues: refused, and nothing is stored. The same for a refresh, whose old
/// credential is still live.
async fn a_credential_is_never_issued_past_a_withdrawal_it_did_not_see(db: TestDatabase) {
    let (store, id) = store_with_user(&db).await;
    let first = token_of(id);
    let before = version_of(&store, id).await;
    let unlimited = CredentialLimit(None);
    assert!(
        store
            .insert_credential(&first, before, unlimited)
            .await
            .unwrap()
            .is_some(),
        "issued with the version it read"
    );

    let read = version_of(&store, id).await;
    store
        .set_password(id, hash("second"), None, event(EventType::PasswordChanged))
        .await
        .unwrap();
    let late = token_of(id);
    let issued = store
        .insert_credential(&late, read, unlimited)
        .await
        .unwrap();
    assert_eq!(issued, None, "a login issued past the password change");
    assert!(store.credential(&late.digest).await.unwrap().is_none());

    let now = version_of(&store, id).await;
    let kept = token_of(id);
    store
        .insert_credential(&kept, now, unlimited)
        .await
        .unwrap();
    // A withdrawal that keeps the refreshed credential itself (a password change made with
    // it): only the version can refuse the refresh.
    store
        .set_password(
            id,
            hash("third"),
            Some(&kept.digest),
            event(EventType::PasswordChanged),
        )
        .await
        .unwrap();
    let refreshed = token_of(id);
    let swapped = store
        .refresh_credential(
            &kept.digest,
            &refreshed,
            now,
            &event(EventType::TokenRefreshed),
        )
        .await
        .unwrap();
    assert!(!swapped, "a refresh issued past the password change");
    assert!(store.credential(&refreshed.digest).await.unwrap().is_none());
}

/// A login verifies the old hash and wants to store it rehashed; meanwhile the password is
/// changed. The rehash must not bring the old password back.
async fn a_rehash_never_overwrites_a_password_changed_meanwhile(db: TestDatabase) {
    let (store, id) = store_with_user(&db).await;
    let read = store
        .login_record(&UserLookup::Id(id))
        .await
        .unwrap()
        .unwrap();
    store
        .set_password(id, hash("changed"), None, event(EventType::PasswordChanged))
        .await
        .unwrap();
    let replaced = store
        .replace_password_hash(id, &read.password_hash, hash("first, rehashed"))
        .await
        .unwrap();
    assert!(!replaced);
    let stored = store
        .login_record(&UserLookup::Id(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.password_hash.expose(), "changed");

    // Unchanged in between, the rehash is stored.
    let replaced = store
        .replace_password_hash(id, &stored.password_hash, hash("changed, rehashed"))
        .await
        .unwrap();
    assert!(replaced);
}
