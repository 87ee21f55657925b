//! Secrets at rest: after every call that takes a password or hands out a key, the tables hold
//! only argon2id PHC hashes of the passwords and SHA-256 digests of the keys; and what an
//! idempotent write keeps gives a word list nothing.

use prost::Message as _;
use proto::auth::v1 as pb;
use service_kit::testing::TestDatabase;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection, Row};

use crate::helpers::*;

const NEW_PASSWORD: &str = "Another456";

/// Every text the `users` and `credentials` tables hold: (column, value) pairs.
async fn stored_texts(db: &TestDatabase) -> Vec<(&'static str, String)> {
    sqlx::any::install_default_drivers();
    let mut connection = AnyConnection::connect(db.url()).await.unwrap();
    let mut texts = Vec::new();
    let users = sqlx::query(
        "SELECT username, username_key, email, email_key, password_hash, first_name, \
         last_name, role FROM users",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let credentials = sqlx::query("SELECT digest, kind, family FROM credentials")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    for (rows, columns) in [
        (
            &users,
            &[
                "username",
                "username_key",
                "email",
                "email_key",
                "password_hash",
                "first_name",
                "last_name",
                "role",
            ][..],
        ),
        (&credentials, &["digest", "kind", "family"][..]),
    ] {
        for row in rows {
            for &column in columns {
                if let Some(text) = row.get::<Option<String>, _>(column) {
                    texts.push((column, text));
                }
            }
        }
    }
    texts
}

fn is_digest(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

async fn only_hashes_and_digests_are_stored(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let mut keys = vec![app.admin_token().await];
    app.register("sam").await;
    let login = app.session_login("sam").await;
    let token = login.token.unwrap().key;
    let session = login.session.expect("a session").key;
    let refreshed = app.refresh(&token).await.unwrap();
    app.client()
        .change_password(authed(
            &refreshed,
            pb::ChangePasswordRequest {
                old_password: Some(PASSWORD.into()),
                new_password: Some(NEW_PASSWORD.into()),
            },
        ))
        .await
        .unwrap();
    keys.extend([token, session, refreshed.clone()]);

    let texts = stored_texts(&db).await;
    let digests: Vec<&str> = texts
        .iter()
        .filter(|(column, _)| *column == "digest")
        .map(|(_, text)| text.as_str())
        .collect();
    let hashes: Vec<&str> = texts
        .iter()
        .filter(|(column, _)| *column == "password_hash")
        .map(|(_, text)| text.as_str())
        .collect();
    assert_eq!(hashes.len(), 2, "{texts:?}");
    for hash in hashes {
        assert!(hash.starts_with("$argon2id$v=19$m="), "{hash}");
    }
    assert!(
        digests.iter().all(|digest| is_digest(digest)),
        "{digests:?}"
    );
    // The key in use after the password change is stored as its digest.
    let expected = hex::encode(Sha256::digest(refreshed.as_bytes()));
    assert!(digests.contains(&expected.as_str()), "{digests:?}");
    for (column, text) in &texts {
        for secret in keys
            .iter()
            .map(String::as_str)
            .chain([PASSWORD, NEW_PASSWORD])
        {
            assert!(!text.contains(secret), "{column} holds a secret: {text}");
        }
    }
}

/// The outside review's attack on `idempotency_keys`: from the stored rows, rebuild each keyed
/// request with every password of a word list and compare it with the fingerprint. Before the
/// fix the fingerprint was an unkeyed SHA-256 of the request and both passwords fell out.
async fn idempotent_writes_keep_nothing_a_word_list_can_use(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let admin = app.admin_token().await;
    let (created_password, set_password) = ("Tr0ub4dor&3", "hunter2-Wonder");
    let create = pb::CreateUserRequest {
        username: Some("keyed".into()),
        password: Some(created_password.into()),
        ..Default::default()
    };
    let mut request = authed(&admin, create.clone());
    request
        .metadata_mut()
        .insert("idempotency-key", "create-keyed-1".parse().unwrap());
    let user = app
        .client()
        .create_user(request)
        .await
        .unwrap()
        .into_inner();
    let update = pb::UpdateUserRequest {
        id: user.id,
        password: Some(set_password.into()),
        ..Default::default()
    };
    let mut request = authed(&admin, update.clone());
    request
        .metadata_mut()
        .insert("idempotency-key", "set-password-1".parse().unwrap());
    app.client().update_user(request).await.unwrap();

    sqlx::any::install_default_drivers();
    let mut connection = AnyConnection::connect(db.url()).await.unwrap();
    let rows = sqlx::query(
        "SELECT method, idempotency_key, fingerprint, response, status_message \
         FROM idempotency_keys",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "both writes were keyed");
    let words = [
        "password",
        "letmein",
        created_password,
        "123456",
        set_password,
    ];
    for row in rows {
        let method: String = row.get("method");
        let key: String = row.get("idempotency_key");
        let fingerprint: Vec<u8> = row.get("fingerprint");
        let response: Option<Vec<u8>> = row.get("response");
        let message: Option<String> = row.get("status_message");
        for word in words {
            let guess = match method.as_str() {
                "CreateUser" => pb::CreateUserRequest {
                    password: Some(word.into()),
                    ..create.clone()
                }
                .encode_to_vec(),
                _ => pb::UpdateUserRequest {
                    password: Some(word.into()),
                    ..update.clone()
                }
                .encode_to_vec(),
            };
            assert_ne!(
                Sha256::digest(&guess).to_vec(),
                fingerprint,
                "{method}'s password {word:?} found by a word list"
            );
            let stored = [response.as_deref(), message.as_deref().map(str::as_bytes)];
            assert!(
                !stored
                    .iter()
                    .flatten()
                    .any(|bytes| bytes.windows(word.len()).any(|w| w == word.as_bytes())),
                "{method}'s stored answer holds {word:?}"
            );
        }
        // The key is the fingerprint's key: stored as sent, it would undo the MAC.
        assert!(
            !["create-keyed-1", "set-password-1"].contains(&key.as_str()),
            "the key is stored as sent: {key}"
        );
    }
}

service_kit::on_both_backends!(
    only_hashes_and_digests_are_stored,
    idempotent_writes_keep_nothing_a_word_list_can_use,
);
