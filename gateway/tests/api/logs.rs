//! Secrets stay out of the logs: a sign-up, a login and a failed one, token checks (by the
//! gateway and by the inventory service), a refresh, a session login, a password change,
//! `createsuperuser`, an admin setting a password, and a Django import with a login that
//! rehashes its password, logged by all three services at TRACE, hold no password, no key and no
//! imported hash. The scenario runs in a child process of this test binary, under
//! a global subscriber that sees every thread.

use std::{
    io::Write,
    path::PathBuf,
    process::Command,
    sync::{Arc, Mutex, PoisonError},
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

use crate::{
    helpers::{PASSWORD, credentials, expect_status, spawn_stack_with},
    sessions::set_cookie,
};

const WRONG_PASSWORD: &str = "Wrong-Guess-471";
const CHANGED_PASSWORD: &str = "Changed-Pass-582";
const CREATED_PASSWORD: &str = "Created-Pass-693";
const SET_PASSWORD: &str = "Set-By-Admin-704";

/// Log lines collected in memory.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Runs the ignored test `name` of this binary in a child process, alone, and fails with its
/// output unless it passed. A scenario that reads the logs runs so: its subscriber must be the
/// global one, to see every thread (the runtime's, its blocking pool's, SQLite's connection
/// threads), and neither a global subscriber here, which would log every other test, nor a
/// thread's own (`set_default`), whose callsite interest other tests' threads race to cache,
/// holds in a process shared with the other tests.
pub fn run_alone(name: &str) {
    let output = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", name, "--ignored", "--test-threads=1"])
        .output()
        .expect("the test binary runs");
    let report = service_kit::testing::printed(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("1 passed"),
        "the scenario did not run: {report}"
    );
}

/// Logs the whole process at `level` into what it returns; the only subscriber it may have.
pub fn capture_logs(level: Level) -> Captured {
    let captured = Captured::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(captured.clone())
            .finish(),
    )
    .expect("this process has no other log subscriber");
    captured
}

#[test]
fn no_password_or_key_reaches_the_logs() {
    run_alone("logs::logins_checks_and_refreshes_log_no_secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by no_password_or_key_reaches_the_logs, in a process of its own"]
async fn logins_checks_and_refreshes_log_no_secret() {
    let captured = capture_logs(Level::TRACE);
    // Everything is logged at TRACE, and the imported password is Django's PBKDF2 at its
    // production cost: slow, so the gateway waits for auth as long as a request may take.
    let stack = spawn_stack_with(|config| config.upstream_timeout = config.request_timeout).await;
    let token = stack.clerk("sam").await;
    let login = stack.log_in("sam").await;
    expect_status(stack.get("/api/me/", Some(&login)).await, StatusCode::OK).await;
    let inventory = stack.get("/api/inventory/", Some(&login)).await;
    expect_status(inventory, StatusCode::OK).await;
    let refresh = stack
        .post("/api/refresh-token/", Some(&login), json!({}))
        .await;
    let refreshed = expect_status(refresh, StatusCode::OK).await["token"]
        .as_str()
        .expect("a new key")
        .to_owned();
    expect_status(
        stack.get("/api/me/", Some(&refreshed)).await,
        StatusCode::OK,
    )
    .await;
    let session = stack.post("/login/", None, credentials("sam")).await;
    let cookie = set_cookie(&session, "sessionid").expect("a session cookie");
    expect_status(session, StatusCode::OK).await;

    let wrong = json!({ "username": "sam", "password": WRONG_PASSWORD });
    let failed = stack.post("/api/login/", None, wrong).await;
    expect_status(failed, StatusCode::UNAUTHORIZED).await;
    let change = json!({ "old_password": PASSWORD, "new_password": CHANGED_PASSWORD });
    let changed = stack
        .post("/api/password/change/", Some(&refreshed), change)
        .await;
    expect_status(changed, StatusCode::OK).await;

    let admin = stack.admin().await;
    let new_user = json!({ "username": "pat", "password": CREATED_PASSWORD });
    let created = stack.post("/users/", Some(&admin), new_user).await;
    let pat = expect_status(created, StatusCode::CREATED).await["id"].clone();
    let set = json!({ "password": SET_PASSWORD });
    let set = stack
        .send(Method::PATCH, &format!("/users/{pat}/"), &admin, set)
        .await;
    expect_status(set, StatusCode::OK).await;

    let dump = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../auth-service/tests/fixtures/django/auth_users.json");
    auth_service::import::import_django_file(&stack.auth_config, &dump, false)
        .await
        .expect("the dump imports");
    let known: Value = serde_json::from_str(
        &std::fs::read_to_string(dump.with_file_name("passwords.json")).unwrap(),
    )
    .unwrap();
    let alice_password = known["passwords"]["alice"].as_str().unwrap();
    let alice = json!({ "username": "alice", "password": alice_password });
    let rehashed = stack.post("/api/login/", None, alice).await;
    let alice_key = expect_status(rehashed, StatusCode::OK).await["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    drop(stack);

    let dumped: Value = serde_json::from_str(&std::fs::read_to_string(&dump).unwrap()).unwrap();
    let imported_hashes = dumped
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|record| record["fields"]["password"].as_str())
        .filter(|hash| !hash.is_empty())
        .map(str::to_owned);
    let imported_keys = known["tokens"]
        .as_object()
        .unwrap()
        .values()
        .map(|key| key.as_str().unwrap().to_owned());
    let secrets: Vec<String> = [
        token,
        login,
        refreshed,
        cookie,
        admin,
        alice_key,
        alice_password.to_owned(),
    ]
    .into_iter()
    .chain(
        [
            PASSWORD,
            WRONG_PASSWORD,
            CHANGED_PASSWORD,
            CREATED_PASSWORD,
            SET_PASSWORD,
        ]
        .map(str::to_owned),
    )
    .chain(imported_hashes)
    .chain(imported_keys)
    .collect();

    let logs = captured.text();
    // The capture works: every service logged, and so did sqlx, down to TRACE.
    for target in [
        "gateway",
        "auth_service",
        "inventory_service",
        "sqlx::query",
        "TRACE",
    ] {
        assert!(logs.contains(target), "nothing from {target} in the logs");
    }
    for secret in secrets {
        assert!(!logs.contains(&secret), "{secret} is in the logs");
    }
}
