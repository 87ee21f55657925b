//! `GET /api/audit/` over the full stack: the events of requests made through the gateway,
//! each with the client and the `X-Request-Id` the gateway forwarded, in the documented shape;
//! filters, DRF paging, 400 for a malformed filter, 403 for anyone but a superuser, and no
//! password or key anywhere in the trail.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const FIELDS: [&str; 9] = [
    "id",
    "time",
    "type",
    "actor_id",
    "target_id",
    "client_address",
    "request_id",
    "outcome",
    "detail",
];

/// The `results` of `GET path` by `admin`, in a page envelope.
async fn results(stack: &Stack, admin: &str, path: &str) -> Vec<Value> {
    let page = expect_status(stack.get(path, Some(admin)).await, StatusCode::OK).await;
    page["results"].as_array().expect("a page").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_shows_each_request_s_events_to_superusers_only() {
    let stack = spawn_stack().await;
    let admin = stack.admin().await;
    let clerk = stack.clerk("clara").await;
    let wrong = "Wrong-guess-42";
    let failed = stack
        .request(Method::POST, "/api/login/")
        .header("x-request-id", "gw-wrong-1")
        .json(&json!({ "username": "clara", "password": wrong }))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let logged_in = stack
        .request(Method::POST, "/api/login/")
        .header("x-request-id", "gw-login-1")
        .json(&credentials("clara"))
        .send()
        .await
        .unwrap();
    let token = expect_status(logged_in, StatusCode::OK).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = expect_status(stack.get("/api/me/", Some(&token)).await, StatusCode::OK).await;
    let clara = me["id"].as_i64().unwrap();

    // Every event of clara, newest first, each in the documented shape.
    let events = results(
        &stack,
        &admin,
        &format!("/api/audit/?user={clara}&limit=50"),
    )
    .await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "login.succeeded",
            "login.failed",
            "login.succeeded",
            "user.created"
        ],
        "{events:#?}"
    );
    for event in &events {
        let mut keys: Vec<&str> = event
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut expected = FIELDS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected, "{event}");
        assert_eq!(event["target_id"], clara);
        assert_eq!(event["client_address"], "127.0.0.1", "{event}");
        assert!(event["detail"].is_object() && event["time"].is_string());
    }
    let login = &events[0];
    assert_eq!(
        (&login["actor_id"], &login["outcome"], &login["request_id"]),
        (&json!(clara), &json!("success"), &json!("gw-login-1"))
    );
    let failure = &events[1];
    assert_eq!(failure["actor_id"], Value::Null);
    assert_eq!(failure["request_id"], "gw-wrong-1");
    assert_eq!(
        failure["detail"],
        json!({ "by": "username", "reason": "wrong_password" })
    );

    // Type and time filters; DRF paging.
    let failures = results(&stack, &admin, "/api/audit/?type=login.failed&limit=10").await;
    assert_eq!(failures.len(), 1);
    let recent = results(
        &stack,
        &admin,
        "/api/audit/?since=2000-01-01T00:00:00Z&limit=10",
    )
    .await;
    assert_eq!(recent.len(), 6, "{recent:#?}");
    let before = "/api/audit/?until=2000-01-01T00:00:00%2B00:00&limit=10";
    assert!(results(&stack, &admin, before).await.is_empty());
    let page = stack
        .get("/api/audit/?limit=2&offset=2", Some(&admin))
        .await;
    let page = expect_status(page, StatusCode::OK).await;
    assert_eq!(page["count"], 6);
    assert_eq!(page["results"].as_array().unwrap().len(), 2);
    assert!(
        page["next"]
            .as_str()
            .unwrap()
            .ends_with("?limit=2&offset=4")
    );
    assert!(page["previous"].as_str().unwrap().ends_with("?limit=2"));
    // A filtered page's links keep the filter.
    let logins = stack
        .get("/api/audit/?type=login.succeeded&limit=1", Some(&admin))
        .await;
    let logins = expect_status(logins, StatusCode::OK).await;
    assert_eq!(logins["count"], 3);
    let next = logins["next"].as_str().unwrap();
    assert!(
        next.ends_with("/api/audit/?limit=1&offset=1&type=login.succeeded"),
        "{next}"
    );

    // Malformed filters are field errors; anyone but a superuser is refused.
    let malformed = stack
        .get("/api/audit/?since=yesterday&user=me", Some(&admin))
        .await;
    expect(
        malformed,
        StatusCode::BAD_REQUEST,
        json!({ "since": ["Enter a valid date/time."], "user": ["Enter a whole number."] }),
    )
    .await;
    let unknown = stack.get("/api/audit/?type=login", Some(&admin)).await;
    expect(
        unknown,
        StatusCode::BAD_REQUEST,
        json!({ "type": ["Unknown event type."] }),
    )
    .await;
    let manager = stack.manager(&admin, "mona").await;
    for key in [&clerk, &manager] {
        expect_detail(
            stack.get("/api/audit/", Some(key)).await,
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        )
        .await;
    }
    let anonymous = stack.get("/api/audit/", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // No password or key in the whole trail.
    let whole = stack.get("/api/audit/", Some(&admin)).await;
    let whole = expect_status(whole, StatusCode::OK).await.to_string();
    for secret in [PASSWORD, wrong, &admin, &clerk, &token, &manager] {
        assert!(!whole.contains(secret), "{secret} is in the trail");
    }
}
