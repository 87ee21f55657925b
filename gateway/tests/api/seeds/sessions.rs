//! Seeds 001 (session login and admin user management) and 002 (versioned token login).

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use super::{NO_PERMISSION, invalid_credentials};
use crate::helpers::{
    PASSWORD, expect, expect_case, expect_detail, expect_status, is_token, spawn_stack,
};

/// Seed 001: email registration, session login, logout, admin user management.
#[tokio::test]
async fn seed_001_session_login_and_user_admin() {
    let stack = spawn_stack().await;

    let registered = stack
        .post(
            "/register/",
            None,
            json!({"email": "a@example.com", "password": "secure123", "first_name": "Alice",
                   "last_name": "Smith"}),
        )
        .await;
    let alice = expect_status(registered, StatusCode::CREATED).await;
    assert_eq!(
        alice,
        json!({"id": alice["id"], "username": null, "email": "a@example.com",
               "first_name": "Alice", "last_name": "Smith", "role": "CLERK",
               "is_staff": false, "is_active": true})
    );

    let login = stack
        .post(
            "/login/",
            None,
            json!({"email": "a@example.com", "password": "secure123"}),
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let cookies: Vec<String> = login
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("sessionid=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")),
        "{cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c.starts_with("csrftoken=")),
        "{cookies:?}"
    );
    let mut body = expect_status(login, StatusCode::OK).await;
    assert!(is_token(&body["token"]));
    let token = body["token"].as_str().unwrap().to_owned();
    body.as_object_mut().unwrap().remove("token");
    let mut expected = alice.clone();
    expected["message"] = json!("user logged in");
    assert_eq!(body, expected);

    let refused = stack
        .post(
            "/login/",
            None,
            json!({"email": "a@example.com", "password": "nope12345"}),
        )
        .await;
    expect(refused, StatusCode::UNAUTHORIZED, invalid_credentials()).await;

    let logout = stack.post("/logout/", Some(&token), json!({})).await;
    expect(
        logout,
        StatusCode::OK,
        json!({"message": "Successfully logged out"}),
    )
    .await;

    // The ModelViewSet: admins only.
    let admin = stack.admin().await;
    let clerk_token = stack.clerk("bob").await;
    let forbidden = stack.get("/users/", Some(&clerk_token)).await;
    expect_detail(forbidden, StatusCode::FORBIDDEN, NO_PERMISSION).await;

    let listed = expect_status(stack.get("/users/", Some(&admin)).await, StatusCode::OK).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");

    let created = stack
        .post(
            "/users/",
            Some(&admin),
            json!({"username": "carol", "email": "c@example.com",
                                               "password": PASSWORD, "role": "MANAGER"}),
        )
        .await;
    let carol = expect_status(created, StatusCode::CREATED).await;
    assert_eq!(carol["role"], "MANAGER");
    let id = carol["id"].as_i64().unwrap();
    let path = format!("/users/{id}/");

    expect(
        stack.get(&path, Some(&admin)).await,
        StatusCode::OK,
        carol.clone(),
    )
    .await;
    let patched = stack
        .send(Method::PATCH, &path, &admin, json!({"first_name": "Carol"}))
        .await;
    assert_eq!(
        expect_status(patched, StatusCode::OK).await["first_name"],
        "Carol"
    );
    let put = stack
        .send(
            Method::PUT,
            &path,
            &admin,
            json!({"last_name": "King", "is_staff": true}),
        )
        .await;
    let updated = expect_status(put, StatusCode::OK).await;
    assert_eq!(
        (&updated["last_name"], &updated["is_staff"]),
        (&json!("King"), &json!(true))
    );

    let carol_token = stack.log_in("carol").await;
    let deleted = stack.send(Method::DELETE, &path, &admin, json!({})).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    expect_detail(
        stack.get(&path, Some(&admin)).await,
        StatusCode::NOT_FOUND,
        "No User matches the given query.",
    )
    .await;
    let stale = stack.get("/api/me/", Some(&carol_token)).await;
    expect_detail(stale, StatusCode::UNAUTHORIZED, "Invalid token.").await;
}

/// Seed 002: `/api/v1/login/`, and the curl/Postman/Axios examples that post to `/login/`.
#[tokio::test]
async fn seed_002_versioned_token_login() {
    let stack = spawn_stack().await;
    let example = json!({"username": "user123", "password": "securepassword"});

    // The document's password has no digit, so no such user can exist: its login is refused,
    // with each route's own status.
    for (path, status) in [
        ("/api/v1/login/", StatusCode::BAD_REQUEST),
        ("/login/", StatusCode::UNAUTHORIZED),
    ] {
        let refused = stack.post(path, None, example.clone()).await;
        expect_case(path, refused, status, invalid_credentials()).await;
    }

    stack.clerk("user123").await;
    let credentials = json!({"username": "user123", "password": PASSWORD});
    let login = stack
        .post("/api/v1/login/", None, credentials.clone())
        .await;
    let body = expect_status(login, StatusCode::OK).await;
    assert_eq!(body["message"], "user logged in");
    assert!(is_token(&body["token"]));
    assert_eq!(body.as_object().unwrap().len(), 2);

    // The curl example: `/login/` accepts a username and answers with message and token too.
    let login = stack.post("/login/", None, credentials).await;
    let via_seed_001 = expect_status(login, StatusCode::OK).await;
    assert_eq!(via_seed_001["message"], "user logged in");
    assert!(is_token(&via_seed_001["token"]));

    let token = body["token"].as_str().unwrap();
    let logout = stack.post("/api/v1/logout/", Some(token), json!({})).await;
    expect(
        logout,
        StatusCode::OK,
        json!({"message": "Logged out successfully"}),
    )
    .await;
    expect_detail(
        stack.get("/api/me/", Some(token)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;
}
