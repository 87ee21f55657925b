//! Secrets stay out of the logs: a sign-up, a login, token checks (by the gateway and by the
//! inventory service), a refresh and a session login, logged by all three services at TRACE,
//! hold no password and no key. The scenario runs in a child process of this test binary, under
//! a global subscriber that sees every thread.

use std::{
    io::Write,
    process::Command,
    sync::{Arc, Mutex, PoisonError},
};

use reqwest::StatusCode;
use serde_json::json;
use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

use crate::{
    helpers::{PASSWORD, credentials, expect_status, spawn_stack},
    sessions::set_cookie,
};

/// Log lines collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
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

/// The scenario below, in a process of its own: its log subscriber must be the global one, to
/// see every thread (the runtime's, its blocking pool's, SQLite's connection threads), and a
/// global subscriber in this process would log every other test too.
#[test]
fn no_password_or_key_reaches_the_logs() {
    let output = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "logs::logins_checks_and_refreshes_log_no_secret",
            "--ignored",
            "--test-threads=1",
        ])
        .output()
        .expect("the test binary runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("1 passed"),
        "the scenario did not run: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by no_password_or_key_reaches_the_logs, in a process of its own"]
async fn logins_checks_and_refreshes_log_no_secret() {
    let captured = Captured::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(captured.clone())
            .finish(),
    )
    .expect("this process has no other log subscriber");
    let stack = spawn_stack().await;
    let token = stack.clerk("alice").await;
    let login = stack.log_in("alice").await;
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
    let session = stack.post("/login/", None, credentials("alice")).await;
    let cookie = set_cookie(&session, "sessionid").expect("a session cookie");
    expect_status(session, StatusCode::OK).await;
    let keys = [token, login, refreshed, cookie];
    drop(stack);

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
    assert!(!logs.contains(PASSWORD), "the password is in the logs");
    for key in keys {
        assert!(!logs.contains(&key), "the key {key} is in the logs");
    }
}
