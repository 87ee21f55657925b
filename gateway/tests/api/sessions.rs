//! The cookie session of `POST /login/`: safe methods need only the cookie; unsafe ones need the
//! CSRF double-submit (Django's three refusals); logout revokes the session and clears both
//! cookies; a session that no longer authenticates is ignored; another site cannot open one
//! (Django's origin check).

use reqwest::{Method, Response, StatusCode, header};
use serde_json::json;

use crate::helpers::{
    Stack, credentials, expect, expect_detail, expect_status, spawn_stack, spawn_stack_with,
};

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
    stack: &Stack,
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
async fn me_by_session(stack: &Stack, session: &str) -> Response {
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

#[tokio::test]
async fn session_cookies_are_secure_when_configured() {
    let login_cookies = |stack: Stack| async move {
        stack.clerk("alice").await;
        let response = stack.post("/login/", None, credentials("alice")).await;
        let cookies: Vec<String> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(cookies.len(), 2, "{cookies:?}");
        cookies
    };
    let secure =
        login_cookies(spawn_stack_with(|config| config.session_cookie_secure = true).await).await;
    assert!(secure.iter().all(|c| c.ends_with("; Secure")), "{secure:?}");
    let plain = login_cookies(spawn_stack().await).await;
    assert!(plain.iter().all(|c| !c.contains("Secure")), "{plain:?}");
}

/// Review item: a CSRF header must equal the cookie, not merely begin or end it.
#[tokio::test]
async fn a_csrf_header_that_is_a_prefix_of_the_cookie_is_refused() {
    let stack = spawn_stack().await;
    let (session, csrf) = session_login(&stack).await;
    let both = both_cookies(&session, &csrf);
    let longer = format!("{csrf}0");
    for header in [&csrf[..csrf.len() - 1], &csrf[..1], longer.as_str()] {
        let response = with_cookies(&stack, Method::POST, "/logout/", &both, Some(header)).await;
        expect_detail(
            response,
            StatusCode::FORBIDDEN,
            "CSRF Failed: CSRF token from the 'X-Csrftoken' HTTP header incorrect.",
        )
        .await;
    }
    // The session is still open: none of those logged it out.
    expect_status(me_by_session(&stack, &session).await, StatusCode::OK).await;
}

/// `POST path` logging alice in, with the given `Origin` and `Referer` headers.
async fn log_in_from(
    stack: &Stack,
    path: &str,
    origin: Option<&str>,
    referer: Option<&str>,
) -> Response {
    let mut request = stack
        .request(Method::POST, path)
        .json(&credentials("alice"));
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    if let Some(referer) = referer {
        request = request.header(header::REFERER, referer);
    }
    request.send().await.unwrap()
}

/// Checks that `response` opened a session.
async fn expect_session(response: Response) {
    assert!(set_cookie(&response, "sessionid").is_some());
    expect_status(response, StatusCode::OK).await;
}

/// Checks that `response` is Django's CSRF refusal for `reason` and opened no session.
async fn expect_csrf_refusal(response: Response, reason: &str) {
    assert!(
        response.headers().get(header::SET_COOKIE).is_none(),
        "{:?}",
        response.headers()
    );
    expect_detail(
        response,
        StatusCode::FORBIDDEN,
        &format!("CSRF Failed: {reason}"),
    )
    .await;
}

/// Finding 8 (login CSRF): another site's form cannot log a browser in at `/login/`, the one
/// route that opens a session; the gateway's own origin, and a request without `Origin` or
/// `Referer` (curl, API clients), can.
#[tokio::test]
async fn another_sites_form_cannot_open_a_session() {
    let stack = spawn_stack().await;
    stack.clerk("alice").await;
    let evil = "https://evil.example";
    expect_csrf_refusal(
        log_in_from(&stack, "/login/", Some(evil), None).await,
        "Origin checking failed - https://evil.example does not match any trusted origins.",
    )
    .await;
    // Over plain HTTP the Referer is not consulted, as in Django; the Origin decides.
    expect_csrf_refusal(
        log_in_from(&stack, "/login/", Some(evil), Some(&stack.base)).await,
        "Origin checking failed - https://evil.example does not match any trusted origins.",
    )
    .await;

    let own = stack.base.as_str();
    expect_session(log_in_from(&stack, "/login/", Some(own), None).await).await;
    expect_session(log_in_from(&stack, "/login/", None, None).await).await;
    expect_session(log_in_from(&stack, "/login/", None, Some("https://evil.example/")).await).await;
    // The token logins open no session, so (as DRF's views are) they are not origin-checked.
    let token_login = log_in_from(&stack, "/api/login/", Some(evil), None).await;
    expect_status(token_login, StatusCode::OK).await;
}

#[tokio::test]
async fn a_trusted_origin_may_open_a_session() {
    let stack = spawn_stack_with(|config| {
        config.csrf_trusted_origins = "https://app.example.com, https://*.example.org"
            .parse()
            .unwrap();
    })
    .await;
    stack.clerk("alice").await;
    for origin in [
        "https://app.example.com",
        "https://www.example.org",
        "https://example.org",
    ] {
        expect_session(log_in_from(&stack, "/login/", Some(origin), None).await).await;
    }
    for origin in [
        "http://app.example.com",
        "https://other.example.com",
        "https://example.org.evil.example",
    ] {
        expect_csrf_refusal(
            log_in_from(&stack, "/login/", Some(origin), None).await,
            &format!("Origin checking failed - {origin} does not match any trusted origins."),
        )
        .await;
    }
}

/// Behind HTTPS (`SESSION_COOKIE_SECURE`), the gateway's own origin is `https://` and, as in
/// Django, a request without `Origin` has its `Referer` checked instead.
#[tokio::test]
async fn behind_https_the_referer_stands_in_for_a_missing_origin() {
    let stack = spawn_stack_with(|config| config.session_cookie_secure = true).await;
    stack.clerk("alice").await;
    let host = stack.base.trim_start_matches("http://");
    let https_own = format!("https://{host}");
    expect_session(log_in_from(&stack, "/login/", Some(&https_own), None).await).await;
    let own_page = format!("https://{host}/login");
    expect_session(log_in_from(&stack, "/login/", None, Some(&own_page)).await).await;
    expect_session(log_in_from(&stack, "/login/", None, None).await).await;

    expect_csrf_refusal(
        log_in_from(&stack, "/login/", Some(&stack.base), None).await,
        &format!(
            "Origin checking failed - {} does not match any trusted origins.",
            stack.base
        ),
    )
    .await;
    expect_csrf_refusal(
        log_in_from(&stack, "/login/", None, Some("https://evil.example/form")).await,
        "Referer checking failed - https://evil.example/form does not match any trusted \
         origins.",
    )
    .await;
    expect_csrf_refusal(
        log_in_from(
            &stack,
            "/login/",
            None,
            Some(&format!("{}/login", stack.base)),
        )
        .await,
        "Referer checking failed - Referer is insecure while host is secure.",
    )
    .await;
}
