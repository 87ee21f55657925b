//! Secrets at rest: after every call that takes a password or hands out a key, the tables hold
//! only argon2id PHC hashes of the passwords and SHA-256 digests of the keys.

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

service_kit::on_both_backends!(only_hashes_and_digests_are_stored);
