//! The cookie session that seed 001's `POST /login/` opens: the `sessionid` cookie (the auth
//! service's session key, presented to the services as `authorization: Session <key>`), the
//! `csrftoken` cookie, and Django's double-submit check that an unsafe request made with the
//! session carries the same token in `X-CSRFToken`.

use std::convert::Infallible;

use axum::{extract::FromRequestParts, response::AppendHeaders};
use http::{HeaderMap, Method, header, request::Parts};
use subtle::ConstantTimeEq;

use crate::{error::Refusal, forwarded::Secure};

/// The cookie holding the session key (Django's name).
pub const SESSION_COOKIE: &str = "sessionid";
/// The cookie holding the CSRF token; readable by scripts, which echo it in [`CSRF_HEADER`].
pub const CSRF_COOKIE: &str = "csrftoken";
/// The header an unsafe session request must repeat the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrftoken";

/// How long the CSRF cookie lives: Django's default, one year.
const CSRF_COOKIE_MAX_AGE: u64 = 31_449_600;

/// The `Set-Cookie` headers of a response.
pub type SetCookies = AppendHeaders<[(header::HeaderName, String); 2]>;

/// The value of cookie `name`, from any `Cookie` header of the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie_name, _)| *cookie_name == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// Whether Django lets `method` through without a CSRF check.
pub fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Django's CSRF check, in its order: the cookie must exist, the header must exist, and they
/// must be equal.
pub fn check_csrf(headers: &HeaderMap) -> Result<(), Refusal> {
    let expected = cookie(headers, CSRF_COOKIE)
        .filter(|token| !token.is_empty())
        .ok_or(Refusal::CsrfCookieNotSet)?;
    let presented = headers
        .get(CSRF_HEADER)
        .map(|value| value.as_bytes())
        .filter(|token| !token.is_empty())
        .ok_or(Refusal::CsrfTokenMissing)?;
    // `subtle` compares without an early exit, so the time taken tells nothing about the token;
    // slices of different lengths are unequal.
    if bool::from(expected.as_bytes().ct_eq(presented)) {
        Ok(())
    } else {
        Err(Refusal::CsrfTokenIncorrect)
    }
}

/// How the gateway's cookies are set on a response (Django's `SESSION_COOKIE_SECURE` and
/// `CSRF_COOKIE_SECURE`, one switch for both): taken from the request, `Secure` when it came
/// over HTTPS ([`Secure`]: the setting, or a trusted proxy's `X-Forwarded-Proto`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CookiePolicy {
    /// Add `Secure`: browsers then send the cookies over HTTPS only.
    pub secure: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for CookiePolicy {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let Secure(secure) = parts.extensions.get().copied().unwrap_or_default();
        Ok(Self { secure })
    }
}

impl CookiePolicy {
    fn attributes(self) -> &'static str {
        if self.secure {
            "Path=/; SameSite=Lax; Secure"
        } else {
            "Path=/; SameSite=Lax"
        }
    }

    /// The cookies that open a session: the key (`HttpOnly`, so scripts never see it) for
    /// `max_age_seconds`, and a fresh CSRF token.
    pub fn open(self, session_key: &str, max_age_seconds: u64) -> SetCookies {
        let attributes = self.attributes();
        AppendHeaders([
            (
                header::SET_COOKIE,
                format!(
                    "{SESSION_COOKIE}={session_key}; HttpOnly; Max-Age={max_age_seconds}; \
                     {attributes}"
                ),
            ),
            (
                header::SET_COOKIE,
                format!(
                    "{CSRF_COOKIE}={}; Max-Age={CSRF_COOKIE_MAX_AGE}; {attributes}",
                    new_csrf_token()
                ),
            ),
        ])
    }

    /// The cookies that end a session: both expire at once.
    pub fn clear(self) -> SetCookies {
        let attributes = self.attributes();
        let expired = |name: &str| {
            format!("{name}=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; {attributes}")
        };
        AppendHeaders([
            (header::SET_COOKIE, expired(SESSION_COOKIE)),
            (header::SET_COOKIE, expired(CSRF_COOKIE)),
        ])
    }
}

/// 128 random bits in hex.
fn new_csrf_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn finds_cookies_among_others() {
        let map = headers(&[("cookie", "a=1; sessionid=abc; csrftoken=\"t\"")]);
        assert_eq!(cookie(&map, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&map, CSRF_COOKIE), Some("t"));
        assert_eq!(cookie(&map, "missing"), None);
    }

    #[test]
    fn secure_cookies_only_when_asked() {
        let cookies = |policy: CookiePolicy| {
            let AppendHeaders(pairs) = policy.open("key", 60);
            let AppendHeaders(cleared) = policy.clear();
            pairs
                .into_iter()
                .chain(cleared)
                .map(|(_, value)| value)
                .collect::<Vec<_>>()
        };
        assert!(
            cookies(CookiePolicy { secure: true })
                .iter()
                .all(|cookie| cookie.ends_with("; Secure"))
        );
        assert!(
            cookies(CookiePolicy::default())
                .iter()
                .all(|cookie| !cookie.contains("Secure"))
        );
    }

    #[test]
    fn checks_csrf_in_djangos_order() {
        assert_eq!(check_csrf(&headers(&[])), Err(Refusal::CsrfCookieNotSet));
        assert_eq!(
            check_csrf(&headers(&[("cookie", "csrftoken=t1")])),
            Err(Refusal::CsrfTokenMissing)
        );
        assert_eq!(
            check_csrf(&headers(&[
                ("cookie", "csrftoken=t1"),
                ("x-csrftoken", "t2")
            ])),
            Err(Refusal::CsrfTokenIncorrect)
        );
        assert_eq!(
            check_csrf(&headers(&[
                ("cookie", "csrftoken=t1"),
                ("x-csrftoken", "t1")
            ])),
            Ok(())
        );
    }

    /// A header that is a prefix of the cookie (or the other way round) is not the token:
    /// an empty-tail comparison would let one character of it through.
    #[test]
    fn refuses_a_prefix_of_the_token() {
        for (cookie, header) in [("csrftoken=t1", "t"), ("csrftoken=t", "t1")] {
            assert_eq!(
                check_csrf(&headers(&[("cookie", cookie), ("x-csrftoken", header)])),
                Err(Refusal::CsrfTokenIncorrect),
                "{cookie:?} with {header:?}"
            );
        }
    }
}
