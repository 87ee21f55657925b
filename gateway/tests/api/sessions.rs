//! The cookie session of `POST /login/` on the full stack: safe methods need only the cookie;
//! unsafe ones need the CSRF double-submit (Django's three refusals); logout revokes the session
//! and clears both cookies; a session that no longer authenticates is ignored. (Who may open a
//! session, an exact CSRF match and `Secure` cookies are `routes::sessions`, on the fake.)

use reqwest::{Method, Response, StatusCode, header};
use serde_json::json;

use crate::helpers::{Http, Stack, credentials, expect, expect_detail, expect_status, spawn_stack};

/// The value of cookie `name` set by `response`.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|cookie| {
            let (pair, _attributes) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (cookie_name, value) = pair.split_once('=')?;
            (cookie_name == name).then(|| value.to_owned())
        })
}

/// Logs `username` (an existing user) in through seed 001's `/login/`: the session key and the
/// CSRF token.
pub async fn session_cookies(stack: &Stack, username: &str) -> (String, String) {
    let response = stack.post("/login/", None, credentials(username)).await;
    let session = set_cookie(&response, "sessionid").expect("a session cookie");
    let csrf = set_cookie(&response, "csrftoken").expect("a CSRF cookie");
    expect_status(response, StatusCode::OK).await;
    (session, csrf)
}

/// Signs `alice` up and logs her in through `/login/`: the session key and the CSRF token.
async fn session_login(stack: &Stack) -> (String, String) {
    stack.clerk("alice").await;
    session_cookies(stack, "alice").await
}

/// The `Cookie` header of a browser holding both cookies of a session login.
pub fn both_cookies(session: &str, csrf: &str) -> String {
    format!("sessionid={session}; csrftoken={csrf}")
}

/// `method path` with the given cookies and, if any, an `X-CSRFToken` header.
pub async fn with_cookies(
    stack: &Http,
    method: Method,
    path: &str,
    cookies: &str,
    csrf_header: Option<&str>,
) -> Response {
    let mut request = stack.request(method, path).header(header::COOKIE, cookies);
    if let Some(token) = csrf_header {
        request = request.header("X-CSRFToken", token);
    }
    request.send().await.unwrap()
}

/// `GET /api/me/` with no cookie but the session.
pub async fn me_by_session(stack: &Http, session: &str) -> Response {
    let cookies = format!("sessionid={session}");
    with_cookies(stack, Method::GET, "/api/me/", &cookies, None).await
}

/// Checks the answer to a request whose session is ignored: anonymous, so told to authenticate.
async fn expect_anonymous(response: Response) {
    expect_detail(
        response,
        StatusCode::UNAUTHORIZED,
        "Authentication credentials were not provided.",
    )
    .await;
}

#[tokio::test]
async fn a_session_reads_without_csrf() {
    let stack = spawn_stack().await;
    let (session, _) = session_login(&stack).await;
    let me = me_by_session(&stack, &session).await;
    assert_eq!(expect_status(me, StatusCode::OK).await["username"], "alice");
}

#[tokio::test]
async fn unsafe_session_requests_need_the_csrf_header() {
    let stack = spawn_stack().await;
    let (session, csrf) = session_login(&stack).await;
    let both = both_cookies(&session, &csrf);

    let no_cookie = with_cookies(
        &stack,
        Method::POST,
        "/logout/",
        &format!("sessionid={session}"),
        Some(&csrf),
    )
    .await;
    expect_detail(
        no_cookie,
        StatusCode::FORBIDDEN,
        "CSRF Failed: CSRF cookie not set.",
    )
    .await;
    let no_header = with_cookies(&stack, Method::POST, "/logout/", &both, None).await;
    expect_detail(
        no_header,
        StatusCode::FORBIDDEN,
        "CSRF Failed: CSRF token missing.",
    )
    .await;
    let wrong = with_cookies(&stack, Method::POST, "/logout/", &both, Some("0000")).await;
    expect_detail(
        wrong,
        StatusCode::FORBIDDEN,
        "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect.",
    )
    .await;

    let logout = with_cookies(&stack, Method::POST, "/logout/", &both, Some(&csrf)).await;
    assert_eq!(set_cookie(&logout, "sessionid").as_deref(), Some("\"\""));
    assert_eq!(set_cookie(&logout, "csrftoken").as_deref(), Some("\"\""));
    expect(
        logout,
        StatusCode::OK,
        json!({"message": "Successfully logged out"}),
    )
    .await;

    // The revoked session is ignored: the request is anonymous.
    let me = with_cookies(&stack, Method::GET, "/api/me/", &both, None).await;
    expect_anonymous(me).await;
    let relogin = stack
        .request(Method::POST, "/login/")
        .header(header::COOKIE, &both)
        .json(&credentials("alice"))
        .send()
        .await
        .unwrap();
    expect_status(relogin, StatusCode::OK).await;
}

#[tokio::test]
async fn a_token_logout_ends_the_session_sent_with_it() {
    let stack = spawn_stack().await;
    let (session, _) = session_login(&stack).await;
    let token = stack.log_in("alice").await;
    let logout = stack
        .request(Method::POST, "/api/v1/logout/")
        .header(header::AUTHORIZATION, format!("Token {token}"))
        .header(header::COOKIE, format!("sessionid={session}"))
        .send()
        .await
        .unwrap();
    expect(
        logout,
        StatusCode::OK,
        json!({"message": "Logged out successfully"}),
    )
    .await;
    expect_anonymous(me_by_session(&stack, &session).await).await;
}

#[tokio::test]
async fn a_new_login_on_a_browser_revokes_its_old_session() {
    let stack = spawn_stack().await;
    let (old, csrf) = session_login(&stack).await;
    let again = stack
        .request(Method::POST, "/login/")
        .header(header::COOKIE, both_cookies(&old, &csrf))
        .header("X-CSRFToken", &csrf)
        .json(&credentials("alice"))
        .send()
        .await
        .unwrap();
    let new = set_cookie(&again, "sessionid").expect("a new session cookie");
    expect_status(again, StatusCode::OK).await;
    assert_ne!(new, old);
    expect_anonymous(me_by_session(&stack, &old).await).await;
    expect_status(me_by_session(&stack, &new).await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_session_cannot_refresh_and_its_key_never_comes_back_in_a_body() {
    let stack = spawn_stack().await;
    let (session, csrf) = session_login(&stack).await;
    let refresh = with_cookies(
        &stack,
        Method::POST,
        "/api/refresh-token/",
        &both_cookies(&session, &csrf),
        Some(&csrf),
    )
    .await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    let body = refresh.text().await.unwrap();
    assert!(!body.contains(&session), "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({"detail": "Authentication credentials were not provided."})
    );
}
