//! Moving in from Django: users and DRF tokens imported with `import-django` (from the real
//! `dumpdata` in auth-service's fixtures) work through the gateway at once, unchanged.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn auth_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../auth-service/tests/fixtures/django")
        .join(name)
}

fn known() -> Value {
    let text = std::fs::read_to_string(auth_fixture("passwords.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drf_token_and_a_django_password_work_through_the_gateway() {
    let stack = spawn_stack().await;
    auth_service::import::import_django_file(
        &stack.auth_config,
        &auth_fixture("auth_users.json"),
        true,
    )
    .await
    .expect("the dump imports");
    let known = known();
    let alice_key = known["tokens"]["alice"].as_str().unwrap();

    // The key the Django app handed out, as its client sends it.
    let me = stack.get("/api/me/", Some(alice_key)).await;
    let me = expect_status(me, StatusCode::OK).await;
    assert_eq!(me["username"], "alice");
    assert_eq!(me["id"], 1);
    let inventory = stack.get("/api/inventory/", Some(alice_key)).await;
    expect_status(inventory, StatusCode::OK).await;

    // A superuser's DRF token writes products.
    let root_key = known["tokens"]["root"].as_str().unwrap();
    let created = stack
        .post(
            "/api/products/",
            Some(root_key),
            json!({"name": "Imported admin's widget", "price": "1.00"}),
        )
        .await;
    expect_status(created, StatusCode::CREATED).await;

    // The Django password logs in (and is rehashed behind the scenes).
    let login = stack
        .post(
            "/api/login/",
            None,
            json!({"username": "bob", "password": known["passwords"]["bob"]}),
        )
        .await;
    let login = expect_status(login, StatusCode::OK).await;
    assert!(is_token(&login["token"]), "{login}");

    // Logging out revokes the imported token like any other.
    let logout = stack.post("/api/logout/", Some(alice_key), json!({})).await;
    assert!(logout.status().is_success(), "{}", logout.status());
    let after = stack.get("/api/me/", Some(alice_key)).await;
    expect_detail(after, StatusCode::UNAUTHORIZED, "Invalid token.").await;
}
