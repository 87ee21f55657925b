//! `import-django`: a real Django `dumpdata` (tests/fixtures/django, made by
//! scripts/django_fixtures) imported, then used as its users and clients would.

use std::{collections::HashMap, path::PathBuf, process::Command};

use auth_service::import::{ImportError, ImportReport, import_django_file};
use proto::{auth::v1 as pb, reasons};
use serde_json::Value;
use service_kit::testing::{TestDatabase, output_with_input};
use sqlx::Row;
use tonic::Code;

use crate::helpers::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/django")
        .join(name)
}

/// The plaintext passwords and token keys the fixtures were made with.
struct Known {
    passwords: HashMap<String, Option<String>>,
    tokens: HashMap<String, String>,
}

fn known() -> Known {
    let text = std::fs::read_to_string(fixture("passwords.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let map = |key: &str| json[key].as_object().unwrap().clone();
    Known {
        passwords: map("passwords")
            .into_iter()
            .map(|(user, password)| (user, password.as_str().map(str::to_owned)))
            .collect(),
        tokens: map("tokens")
            .into_iter()
            .map(|(user, key)| (user, key.as_str().unwrap().to_owned()))
            .collect(),
    }
}

fn unix_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(now.unwrap().as_secs()).unwrap()
}

async fn pool(db: &TestDatabase) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(db.url()).await.unwrap()
}

async fn stored_hash(db: &TestDatabase, username: &str) -> String {
    sqlx::query("SELECT password_hash FROM users WHERE username = $1")
        .bind(username.to_owned())
        .fetch_one(&pool(db).await)
        .await
        .unwrap()
        .try_get("password_hash")
        .unwrap()
}

async fn user_count(db: &TestDatabase) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM users")
        .fetch_one(&pool(db).await)
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

async fn import(app: &TestApp, name: &str, keep_ids: bool) -> Result<ImportReport, ImportError> {
    import_django_file(&app.config, &fixture(name), keep_ids)
        .await
        .map(|(_, report)| report)
}

/// A copy of the users fixture with `edit` applied, in a temporary file.
fn edited_fixture(edit: impl FnOnce(&mut Vec<Value>)) -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(fixture("auth_users.json")).unwrap();
    let mut records: Vec<Value> = serde_json::from_str(&text).unwrap();
    edit(&mut records);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_string(&records).unwrap()).unwrap();
    file
}

async fn every_password_logs_in_and_is_then_argon2id(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let report = import(&app, "auth_users.json", true).await.unwrap();
    assert_eq!(
        report,
        ImportReport {
            users_imported: 9,
            users_skipped: 0,
            tokens_imported: 4,
            tokens_skipped: 0,
        }
    );
    let known = known();
    // One user per hasher: pbkdf2_sha256, pbkdf2_sha1, argon2, bcrypt_sha256, and non-ASCII.
    for username in ["alice", "bob", "carol", "dave", "zoë", "root"] {
        let password = known.passwords[username].as_deref().unwrap();
        let before = stored_hash(&db, username).await;
        assert!(!before.starts_with("$argon2id$"), "{username}: {before}");
        let wrong = app.login(username, &format!("{password}x")).await;
        assert_rejected(wrong, Code::Unauthenticated, reasons::INVALID_CREDENTIALS);
        assert_eq!(
            stored_hash(&db, username).await,
            before,
            "a wrong password changes nothing"
        );
        let response = app
            .login(username, password)
            .await
            .unwrap_or_else(|s| panic!("{username} logs in: {s:?}"));
        assert_eq!(response.user.unwrap().username.as_deref(), Some(username));
        let after = stored_hash(&db, username).await;
        assert!(
            after.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{username}: {after}"
        );
        app.login(username, password)
            .await
            .expect("the new hash verifies the same password");
    }
    // An unusable password never verifies; an inactive user is told so.
    let erin = app.login("erin", "").await;
    assert!(erin.is_err());
    for guess in ["!", "erin", "Password123"] {
        assert_rejected(
            app.login("erin", guess).await,
            Code::Unauthenticated,
            reasons::INVALID_CREDENTIALS,
        );
    }
    assert_rejected(
        app.login("ghost", known.passwords["ghost"].as_deref().unwrap())
            .await,
        Code::PermissionDenied,
        reasons::USER_INACTIVE,
    );
    app.stop().await;
}

async fn drf_tokens_keep_working_and_ids_and_fields_carry_over(db: TestDatabase) {
    let app = spawn_app(&db).await;
    import(&app, "auth_users.json", true).await.unwrap();
    let known = known();
    for (username, key) in &known.tokens {
        if username == "mona_manager" {
            continue; // of the custom user model's fixture
        }
        let validated = app
            .validate(key)
            .await
            .unwrap_or_else(|s| panic!("{username}'s DRF token: {s:?}"));
        let user = validated.user.unwrap();
        assert_eq!(user.username.as_deref(), Some(username.as_str()));
        let lifetime = validated.expires_at.unwrap().seconds - unix_now();
        assert!(
            (86_400 - 120..=86_400).contains(&lifetime),
            "the lifetime is TOKEN_TTL_SECONDS from the import, not DRF's forever: {lifetime}"
        );
    }
    let root_token = &known.tokens["root"];
    let alice = app
        .client()
        .get_user(authed(root_token, pb::GetUserRequest { id: 1 }))
        .await
        .expect("a superuser's token manages users")
        .into_inner();
    assert_eq!(alice.username.as_deref(), Some("alice"));
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert_eq!(
        (alice.first_name.as_str(), alice.last_name.as_str()),
        ("Alice", "Liddell")
    );
    assert_eq!(alice.role(), pb::Role::Clerk);
    assert_eq!(
        alice.date_joined.unwrap().to_string(),
        "2023-03-01T09:15:30.123Z"
    );
    assert_eq!(
        alice.last_login.unwrap().to_string(),
        "2024-05-20T17:45:00.654Z"
    );
    let root = app.validate(root_token).await.unwrap().user.unwrap();
    assert!(root.is_superuser && root.is_staff);
    assert_eq!(root.role(), pb::Role::Admin);
    let bob = app
        .client()
        .get_user(authed(root_token, pb::GetUserRequest { id: 2 }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bob.email, None, "Django's blank email");

    // The next user gets an id past every imported one, on both backends.
    let newcomer = app.register("newcomer").await;
    let highest: i64 = sqlx::query("SELECT MAX(id) FROM users WHERE username <> 'newcomer'")
        .fetch_one(&pool(&db).await)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert!(newcomer.id > highest, "{} > {highest}", newcomer.id);
    app.stop().await;
}

async fn importing_again_skips_what_is_there(db: TestDatabase) {
    let app = spawn_app(&db).await;
    import(&app, "auth_users.json", true).await.unwrap();
    let again = import(&app, "auth_users.json", true).await.unwrap();
    assert_eq!(
        again,
        ImportReport {
            users_imported: 0,
            users_skipped: 9,
            tokens_imported: 0,
            tokens_skipped: 4,
        }
    );
    assert_eq!(user_count(&db).await, 9);
    app.stop().await;
}

async fn a_bad_record_names_itself_and_nothing_is_written(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let tampered = edited_fixture(|records| {
        let last_user = records
            .iter_mut()
            .rfind(|r| r["model"] == "auth.user")
            .unwrap();
        last_user["fields"]["password"] = "pbkdf2_sha256$1000000$salt$tampered".into();
    });
    let err = import_django_file(&app.config, tampered.path(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("auth.user pk") && err.contains("field password: malformed pbkdf2_sha256"),
        "{err}"
    );
    let unknown = edited_fixture(|records| {
        records[0]["fields"]["password"] = "sha1$salt$0123456789abcdef".into();
    });
    let err = import_django_file(&app.config, unknown.path(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "auth.user pk 1, field password: unsupported password hash algorithm \"sha1\""
        ),
        "{err}"
    );
    let text = std::fs::read_to_string(fixture("auth_users.json")).unwrap();
    let truncated = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(truncated.path(), &text[..text.len() * 2 / 3]).unwrap();
    let err = import_django_file(&app.config, truncated.path(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not the JSON of a dumpdata"), "{err}");
    // A record the database refuses (a second account with alice's email) rolls back the
    // users written before it.
    let duplicate = edited_fixture(|records| {
        let last_user = records
            .iter_mut()
            .rfind(|r| r["model"] == "auth.user")
            .unwrap();
        last_user["fields"]["email"] = "ALICE@example.com".into();
    });
    let err = import_django_file(&app.config, duplicate.path(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("field email: the same email (ignoring case) as auth.user pk 1 (alice)"),
        "{err}"
    );
    assert_eq!(user_count(&db).await, 0, "nothing was written");
    app.stop().await;
}

async fn an_id_held_by_another_user_needs_new_ids(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let local = app.register("local").await;
    assert_eq!(local.id, 1);
    let err = import(&app, "auth_users.json", true).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("field pk: id 1 is held by user \"local\" (id 1 here); run with --new-ids"),
        "{err}"
    );
    assert_eq!(user_count(&db).await, 1);
    let report = import(&app, "auth_users.json", false).await.unwrap();
    assert_eq!((report.users_imported, report.tokens_imported), (9, 4));
    let alice = app
        .validate(&known().tokens["alice"])
        .await
        .unwrap()
        .user
        .unwrap();
    assert_eq!(
        alice.username.as_deref(),
        Some("alice"),
        "tokens follow their user"
    );
    assert_ne!(alice.id, 1);
    app.stop().await;
}

async fn a_custom_user_model_keeps_its_roles(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let report = import(&app, "custom_users.json", true).await.unwrap();
    assert_eq!((report.users_imported, report.tokens_imported), (4, 1));
    let known = known();
    let mona = app
        .validate(&known.tokens["mona_manager"])
        .await
        .unwrap()
        .user
        .unwrap();
    assert_eq!(mona.role(), pb::Role::Manager);
    for (username, role) in [
        ("adam-admin", pb::Role::Admin),
        ("kim.clerk", pb::Role::Clerk),
    ] {
        let password = known.passwords[username].as_deref().unwrap();
        let user = app.login(username, password).await.unwrap().user.unwrap();
        assert_eq!(user.role(), role, "{username}");
    }
    app.stop().await;
}

async fn the_command_reads_standard_input_and_says_what_it_did(db: TestDatabase) {
    let run = |file: &str, input: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_auth-service"));
        command
            .args(["import-django", file])
            .env("AUTH_DATABASE_URL", db.url())
            .env("ARGON2_MEMORY_KIB", "64")
            .env("ARGON2_ITERATIONS", "1");
        output_with_input(&mut command, input)
    };
    let text = std::fs::read_to_string(fixture("auth_users.json")).unwrap();
    let first = run("-", &text);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        "Imported 9 users and 4 tokens; skipped 0 users and 0 tokens already there.\n"
    );
    let again = run("-", &text);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "Imported 0 users and 0 tokens; skipped 9 users and 4 tokens already there.\n"
    );
    let missing = run("/nonexistent/dump.json", "");
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/dump.json"),
        "{missing:?}"
    );
}

async fn a_list_call_returns_at_most_the_maximum_page(db: TestDatabase) {
    let app = spawn_app(&db).await;
    let dump: Vec<Value> = (1..=1100)
        .map(|id| {
            serde_json::json!({"model": "auth.user", "pk": id,
                "fields": {"username": format!("user{id}"), "password": "!",
                           "is_staff": id == 1, "is_superuser": id == 1}})
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&dump).unwrap()).unwrap();
    import_django_file(&app.config, file.path(), true)
        .await
        .unwrap();
    let admin = app.admin_token().await;
    for limit in [None, Some(5000)] {
        let page = app
            .client()
            .list_users(authed(&admin, pb::ListUsersRequest { limit, offset: 0 }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.users.len(), 1000, "limit {limit:?}");
        assert_eq!(page.total_count, 1101);
    }
}

/// allauth's `account.emailaddress` says whose email was verified: with mandatory verification
/// an unverified one may not log in, a verified one may, and so may a user with no record (an
/// app without allauth verified nobody, and refused nobody for it).
async fn allauths_verified_addresses_carry_over(db: TestDatabase) {
    let mut config = auth_service::Config::for_tests(db.url());
    config.recovery.verification = auth_service::config::recovery::Verification::Mandatory;
    let app = spawn_app_with(config).await;
    let address = |pk: i64, user: i64, email: &str, verified: bool| {
        serde_json::json!({
            "model": "account.emailaddress", "pk": pk,
            "fields": {"user": user, "email": email, "verified": verified, "primary": true},
        })
    };
    let dump = edited_fixture(|records| {
        records.push(address(1, 1, "Alice@Example.com", false));
        records.push(address(2, 3, "carol@example.com", true));
        // Another address of dave's, unverified, says nothing of his own.
        records.push(address(3, 4, "old-dave@example.com", false));
    });
    import_django_file(&app.config, dump.path(), true)
        .await
        .unwrap();
    let known = known();
    let password = |name: &str| known.passwords[name].clone().unwrap();
    assert_rejected(
        app.login("alice", &password("alice")).await,
        Code::FailedPrecondition,
        reasons::EMAIL_NOT_VERIFIED,
    );
    for name in ["carol", "dave", "staffer"] {
        assert!(app.login(name, &password(name)).await.is_ok(), "{name}");
    }
}

service_kit::on_both_backends!(
    allauths_verified_addresses_carry_over,
    a_list_call_returns_at_most_the_maximum_page,
    every_password_logs_in_and_is_then_argon2id,
    drf_tokens_keep_working_and_ids_and_fields_carry_over,
    importing_again_skips_what_is_there,
    a_bad_record_names_itself_and_nothing_is_written,
    an_id_held_by_another_user_needs_new_ids,
    a_custom_user_model_keeps_its_roles,
    the_command_reads_standard_input_and_says_what_it_did,
);
