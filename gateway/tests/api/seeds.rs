//! The example requests of the five documents in `shared/seeds/`, sent as written, get the
//! documented responses (API.md decides where a document is vague or contradicts another).

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, expect, expect_case, expect_detail, expect_status, is_token, spawn_stack,
};

/// The body of a refused login on the routes of seeds 000, 001 and 002.
fn invalid_credentials() -> Value {
    json!({"error": "Invalid credentials"})
}

/// The body of a refused login on the routes of seeds 003 and 004 (DRF's `ObtainAuthToken`).
fn unable_to_log_in() -> Value {
    json!({"non_field_errors": ["Unable to log in with provided credentials."]})
}

/// DRF's 403 detail, for a clerk at a route that is not for clerks.
const NO_PERMISSION: &str = "You do not have permission to perform this action.";

/// Seed 000: register, token login, products, inventory, detail, logout.
#[tokio::test]
async fn seed_000_token_auth_and_inventory() {
    let stack = spawn_stack().await;

    let registered = stack
        .post(
            "/api/register/",
            None,
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    let user = expect_status(registered, StatusCode::CREATED).await;
    assert_eq!(
        user,
        json!({"id": user["id"], "username": "alice", "email": null, "first_name": "",
               "last_name": "", "role": "CLERK"})
    );

    let login = stack
        .post(
            "/api/login/",
            None,
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    let body = expect_status(login, StatusCode::OK).await;
    assert!(is_token(&body["token"]), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1);
    let clerk = body["token"].as_str().unwrap().to_owned();

    let refused = stack
        .post(
            "/api/login/",
            None,
            json!({"username": "alice", "password": "wrong-pass1"}),
        )
        .await;
    expect(refused, StatusCode::UNAUTHORIZED, invalid_credentials()).await;

    // Only staff (or a MANAGER/ADMIN) may create products.
    let product =
        json!({"name": "Widget", "description": "A widget", "price": 19.99, "quantity": 5});
    let forbidden = stack
        .post("/api/products/", Some(&clerk), product.clone())
        .await;
    expect_detail(forbidden, StatusCode::FORBIDDEN, NO_PERMISSION).await;

    let admin = stack.admin().await;
    let created = stack.post("/api/products/", Some(&admin), product).await;
    let widget = expect_status(created, StatusCode::CREATED).await;
    assert_eq!(widget["name"], "Widget");
    assert_eq!(widget["description"], "A widget");
    assert_eq!(
        widget["price"], "19.99",
        "the price keeps its exact decimal text"
    );
    assert_eq!(widget["quantity"], 5);
    assert!(
        widget["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let id = widget["id"].as_i64().unwrap();

    for path in ["/api/inventory/", "/api/products/"] {
        let listed = stack.get(path, Some(&clerk)).await;
        expect(listed, StatusCode::OK, json!([widget.clone()])).await;
    }
    let detail = stack
        .get(&format!("/api/products/{id}/"), Some(&clerk))
        .await;
    expect(detail, StatusCode::OK, widget.clone()).await;

    let updated = stack
        .send(
            Method::PATCH,
            &format!("/api/products/{id}/"),
            &admin,
            json!({"quantity": 7}),
        )
        .await;
    assert_eq!(expect_status(updated, StatusCode::OK).await["quantity"], 7);
    let replaced = stack
        .send(
            Method::PUT,
            &format!("/api/products/{id}/"),
            &admin,
            json!({"name": "Gadget", "description": "", "price": "5.00", "quantity": 1}),
        )
        .await;
    let gadget = expect_status(replaced, StatusCode::OK).await;
    assert_eq!(
        (&gadget["name"], &gadget["price"]),
        (&json!("Gadget"), &json!("5.00"))
    );
    let incomplete = stack
        .send(
            Method::PUT,
            &format!("/api/products/{id}/"),
            &admin,
            json!({"quantity": 1}),
        )
        .await;
    expect(
        incomplete,
        StatusCode::BAD_REQUEST,
        json!({"name": ["This field is required."], "price": ["This field is required."]}),
    )
    .await;

    let logout = stack.post("/api/logout/", Some(&clerk), json!({})).await;
    expect(
        logout,
        StatusCode::OK,
        json!({"message": "Successfully logged out."}),
    )
    .await;
    let after = stack.get("/api/inventory/", Some(&clerk)).await;
    expect_detail(after, StatusCode::UNAUTHORIZED, "Invalid token.").await;

    let deleted = stack
        .send(
            Method::DELETE,
            &format!("/api/products/{id}/"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = stack
        .get(&format!("/api/products/{id}/"), Some(&admin))
        .await;
    expect_detail(
        gone,
        StatusCode::NOT_FOUND,
        "No Product matches the given query.",
    )
    .await;
}

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

/// Seed 003: registration with two passwords, `key` login, logout.
#[tokio::test]
async fn seed_003_email_registration_and_key_login() {
    let stack = spawn_stack().await;
    let example = json!({
        "first_name": "John",
        "last_name": "Doe",
        "email": "john.doe@example.com",
        "password1": "Password123",
        "password2": "Password123"
    });

    let registered = stack
        .post("/api/users/registration/", None, example.clone())
        .await;
    let john = expect_status(registered, StatusCode::CREATED).await;
    assert_eq!(
        john,
        json!({"id": john["id"], "first_name": "John", "last_name": "Doe",
               "email": "john.doe@example.com"})
    );

    // The example again, then with a new email but passwords that are refused: what each case
    // changes in the example, and the field errors.
    let refusals = [
        (
            "the same email again",
            json!({}),
            json!({"email": ["A user with this email already exists."]}),
        ),
        (
            "passwords that differ",
            json!({"email": "jane@example.com", "password2": "Password124"}),
            json!({"password2": ["The two password fields did not match."]}),
        ),
        (
            "a password without a numeral",
            json!({"email": "jane@example.com", "password1": "Password", "password2": "Password"}),
            json!({"password1": ["Password must contain at least one numeral."]}),
        ),
    ];
    for (case, changes, errors) in refusals {
        let mut body = example.clone();
        for (field, value) in changes.as_object().unwrap() {
            body[field] = value.clone();
        }
        let refused = stack.post("/api/users/registration/", None, body).await;
        expect_case(case, refused, StatusCode::BAD_REQUEST, errors).await;
    }

    let credentials = json!({"email": "john.doe@example.com", "password": "Password123"});
    let login = stack
        .post("/api/users/login/", None, credentials.clone())
        .await;
    let body = expect_status(login, StatusCode::OK).await;
    assert!(is_token(&body["key"]));
    assert_eq!(body.as_object().unwrap().len(), 1);
    let key = body["key"].as_str().unwrap().to_owned();

    let refused = stack
        .post(
            "/api/users/login/",
            None,
            json!({"email": "john.doe@example.com", "password": "Password999"}),
        )
        .await;
    expect(refused, StatusCode::BAD_REQUEST, unable_to_log_in()).await;

    let no_credentials = stack.post("/api/users/logout/", None, json!({})).await;
    expect_detail(
        no_credentials,
        StatusCode::BAD_REQUEST,
        "You should be logged in to logout. Check whether the token is passed.",
    )
    .await;
    let logout = stack
        .post("/api/users/logout/", Some(&key), json!({}))
        .await;
    expect_detail(logout, StatusCode::OK, "Successfully logged out.").await;
    let bad_key = stack
        .post("/api/users/logout/", Some(&key), json!({}))
        .await;
    expect_detail(bad_key, StatusCode::UNAUTHORIZED, "Invalid token.").await;

    // A disabled account is told apart, after a correct password only.
    let admin = stack.admin().await;
    let path = format!("/users/{}/", john["id"]);
    let disabled = stack
        .send(Method::PATCH, &path, &admin, json!({"is_active": false}))
        .await;
    assert_eq!(
        expect_status(disabled, StatusCode::OK).await["is_active"],
        false
    );
    let login = stack.post("/api/users/login/", None, credentials).await;
    expect(
        login,
        StatusCode::BAD_REQUEST,
        json!({"non_field_errors": ["User account is disabled."]}),
    )
    .await;
}

/// Seed 004: sign-up with a role, token login, dashboard, refresh, logout, invalid token.
#[tokio::test]
async fn seed_004_signup_refresh_and_dashboard() {
    let stack = spawn_stack().await;

    let signup = stack
        .post(
            "/api/signup/",
            None,
            json!({"username": "newuser", "email": "newuser@example.com",
                                           "password": "password123", "role": "CLERK"}),
        )
        .await;
    let body = expect_status(signup, StatusCode::CREATED).await;
    assert_eq!(
        body["user"],
        json!({"id": body["user"]["id"], "username": "newuser", "email": "newuser@example.com", "role": "CLERK"})
    );
    assert!(is_token(&body["token"]));

    let promoted = stack
        .post(
            "/api/signup/",
            None,
            json!({"username": "boss", "email": "boss@example.com",
                                           "password": "password123", "role": "MANAGER"}),
        )
        .await;
    expect(
        promoted,
        StatusCode::BAD_REQUEST,
        json!({"role": ["This role cannot be self-assigned."]}),
    )
    .await;

    let login = stack
        .post(
            "/api/api-token-auth/",
            None,
            json!({"username": "newuser", "password": "password123"}),
        )
        .await;
    let body = expect_status(login, StatusCode::OK).await;
    assert!(is_token(&body["token"]));
    let token = body["token"].as_str().unwrap().to_owned();
    let refused = stack
        .post(
            "/api/api-token-auth/",
            None,
            json!({"username": "newuser", "password": "password124"}),
        )
        .await;
    expect(refused, StatusCode::BAD_REQUEST, unable_to_log_in()).await;

    let dashboard = stack.get("/api/dashboard/", Some(&token)).await;
    expect(
        dashboard,
        StatusCode::OK,
        json!({"message": "Welcome to the Clerk Dashboard!"}),
    )
    .await;
    let admin = stack.admin().await;
    let dashboard = stack.get("/api/dashboard/", Some(&admin)).await;
    expect(
        dashboard,
        StatusCode::OK,
        json!({"message": "Welcome to the Admin Dashboard!"}),
    )
    .await;

    let refreshed = stack
        .post("/api/refresh-token/", Some(&token), json!({}))
        .await;
    let body = expect_status(refreshed, StatusCode::OK).await;
    assert!(is_token(&body["token"]));
    let new_token = body["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    expect_detail(
        stack.get("/api/dashboard/", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "Invalid token.",
    )
    .await;

    let logout = stack
        .post("/api/logout/", Some(&new_token), json!({}))
        .await;
    expect(
        logout,
        StatusCode::OK,
        json!({"message": "Successfully logged out."}),
    )
    .await;
    let invalid = stack.get("/api/dashboard/", Some(&new_token)).await;
    expect_detail(invalid, StatusCode::UNAUTHORIZED, "Invalid token.").await;
}
