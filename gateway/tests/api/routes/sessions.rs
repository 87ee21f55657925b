//! Django's defences of the cookie session as the gateway applies them, on the fake (whose auth
//! opens a session for any login and knows its key): another site cannot open one (the origin
//! check, trusted origins, the `Referer` behind HTTPS), a CSRF header must equal its cookie
//! exactly, and the cookies are `Secure` when configured. A refused login never reaches auth.
//! That a session authenticates, and that logout revokes it, is `crate::sessions`, on the full
//! stack.

use proto::auth::v1::{CredentialKind, IssuedCredential, LoginResponse, Role};
use reqwest::{Method, Response, StatusCode, header};

use crate::{
    fake_upstream::{COMPLETE_MFA_LOGIN, FakeStack, LOGIN, spawn_fake_with, user},
    helpers::{Http, credentials, expect_detail, expect_status},
    sessions::{both_cookies, me_by_session, set_cookie, with_cookies},
};

/// The key of the session every login opens.
const SESSION_KEY: &str = "5e55105e55105e55105e55105e55105e55105e55";

/// A gateway configured by `configure` in front of a fake whose every login succeeds as alice,
/// with a token and a session ([`SESSION_KEY`], which then authenticates alice).
pub(super) async fn spawn_logging_in(configure: impl FnOnce(&mut gateway::Config)) -> FakeStack {
    let stack = spawn_fake_with(configure).await;
    let alice = user(1, "alice", Role::Clerk);
    let issued = |key: &str, kind: CredentialKind| IssuedCredential {
        key: key.to_owned(),
        kind: kind.into(),
        expires_at: None,
    };
    let answer = LoginResponse {
        token: Some(issued(
            "70c3e070c3e070c3e070c3e070c3e070c3e070c3",
            CredentialKind::Token,
        )),
        session: Some(issued(SESSION_KEY, CredentialKind::Session)),
        user: Some(alice.clone()),
        ..LoginResponse::default()
    };
    let completed = LoginResponse {
        route: Some("/login/".to_owned()),
        ..answer.clone()
    };
    stack.fake.answer(LOGIN, Ok(answer));
    stack.fake.answer(COMPLETE_MFA_LOGIN, Ok(completed));
    stack.fake.add_user(SESSION_KEY, alice);
    stack
}

/// How many logins reached auth.
fn logins(stack: &FakeStack) -> usize {
    stack.fake.requests(LOGIN).len()
}

#[tokio::test]
async fn session_cookies_are_secure_when_configured() {
    let login_cookies = |stack: FakeStack| async move {
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
        login_cookies(spawn_logging_in(|config| config.session_cookie_secure = true).await).await;
    assert!(secure.iter().all(|c| c.ends_with("; Secure")), "{secure:?}");
    let plain = login_cookies(spawn_logging_in(|_| {}).await).await;
    assert!(plain.iter().all(|c| !c.contains("Secure")), "{plain:?}");
}

/// Review item: a CSRF header must equal the cookie, not merely begin or end it.
#[tokio::test]
async fn a_csrf_header_that_is_a_prefix_of_the_cookie_is_refused() {
    let stack = spawn_logging_in(|_| {}).await;
    let response = stack.post("/login/", None, credentials("alice")).await;
    let csrf = set_cookie(&response, "csrftoken").expect("a CSRF cookie");
    let session = set_cookie(&response, "sessionid").expect("a session cookie");
    assert_eq!(session, SESSION_KEY);
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
    stack: &Http,
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
    let stack = spawn_logging_in(|_| {}).await;
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
    // The refused two never reached auth; the session logins asked for a session.
    assert_eq!(logins(&stack), 4);
    let asked: Vec<_> = stack.fake.requests(LOGIN);
    let sessions: Vec<_> = asked.iter().map(|c| c.message.open_session).collect();
    assert_eq!(sessions, [true, true, true, false]);
}

/// The second step of a login may open `/login/`'s session, so another site's request is
/// refused there too, before the code reaches auth; the session it opens is the route's.
#[tokio::test]
async fn another_sites_request_cannot_complete_a_second_factor_login() {
    let stack = spawn_logging_in(|_| {}).await;
    let complete = |origin: Option<&'static str>| {
        let body = serde_json::json!({
            "challenge": "0123456789abcdef0123456789abcdef01234567",
            "code": "123456",
        });
        let mut request = stack.request(Method::POST, "/api/login/mfa/").json(&body);
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        async move { request.send().await.unwrap() }
    };
    expect_csrf_refusal(
        complete(Some("https://evil.example")).await,
        "Origin checking failed - https://evil.example does not match any trusted origins.",
    )
    .await;
    assert!(stack.fake.requests(COMPLETE_MFA_LOGIN).is_empty());
    let response = complete(None).await;
    assert_eq!(
        set_cookie(&response, "sessionid").as_deref(),
        Some(SESSION_KEY)
    );
    let body = expect_status(response, StatusCode::OK).await;
    assert_eq!(body["message"], "user logged in");
    assert_eq!(stack.fake.requests(COMPLETE_MFA_LOGIN).len(), 1);
}

#[tokio::test]
async fn a_trusted_origin_may_open_a_session() {
    let stack = spawn_logging_in(|config| {
        config.csrf_trusted_origins = "https://app.example.com, https://*.example.org"
            .parse()
            .unwrap();
    })
    .await;
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
    assert_eq!(logins(&stack), 3);
}

/// Behind HTTPS (`SESSION_COOKIE_SECURE`), the gateway's own origin is `https://` and, as in
/// Django, a request without `Origin` has its `Referer` checked instead.
#[tokio::test]
async fn behind_https_the_referer_stands_in_for_a_missing_origin() {
    let stack = spawn_logging_in(|config| config.session_cookie_secure = true).await;
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
    assert_eq!(logins(&stack), 3);
}
