//! Django's CSRF origin check (`CsrfViewMiddleware`), on the routes that open a session: a
//! browser's `Origin` (or, on HTTPS without one, its `Referer`) must be the gateway's own or
//! one of `CSRF_TRUSTED_ORIGINS`, so that another site's form cannot log a browser into an
//! account of the attacker's choosing (login CSRF).
//!
//! A request with neither header did not come from a browser's cross-site form (browsers send
//! `Origin` with every cross-site POST) and passes, so curl and API clients work as before.
//! Django would refuse one on HTTPS for want of a `Referer`, but its login view also demands a
//! CSRF token, which these routes never did.

use std::{convert::Infallible, str::FromStr, sync::Arc};

use axum::extract::{FromRef, FromRequestParts};
use http::{HeaderMap, header, request::Parts};

use crate::{error::Refusal, forwarded::Secure, hosts::RequestHost};

/// The origins trusted besides the gateway's own (`CSRF_TRUSTED_ORIGINS`, Django's format):
/// `scheme://host[:port]`, or `scheme://*.domain[:port]` for every subdomain of `domain` (and
/// `domain` itself, as Django matches it). Stored lowercased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedOrigins(Vec<Trusted>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Trusted {
    scheme: String,
    host: TrustedHost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TrustedHost {
    /// `host[:port]`, exactly.
    Exact(String),
    /// `.domain[:port]`: the `*` of `*.domain` taken off, as Django does.
    Subdomains(String),
}

impl TrustedHost {
    /// Django's `is_same_domain(netloc, pattern)`.
    fn matches(&self, netloc: &str) -> bool {
        match self {
            Self::Exact(host) => netloc.eq_ignore_ascii_case(host),
            Self::Subdomains(suffix) => {
                let netloc = netloc.to_ascii_lowercase();
                netloc.ends_with(suffix.as_str()) || netloc == suffix[1..]
            }
        }
    }
}

impl FromStr for TrustedOrigins {
    type Err = String;

    /// A comma-separated list; empty trusts no other origin.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut trusted = Vec::new();
        for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let origin = origin.to_ascii_lowercase();
            // An origin with a path, or a `*` anywhere but first, could never match: refuse it
            // at start-up rather than ignore it.
            let invalid = || format!("{origin:?} is not scheme://host[:port] or scheme://*.domain");
            let (scheme, netloc, rest) = split_url(&origin).ok_or_else(invalid)?;
            if !rest.is_empty() {
                return Err(invalid());
            }
            let host = match netloc.strip_prefix("*.") {
                Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                    TrustedHost::Subdomains(format!(".{domain}"))
                }
                None if !netloc.contains('*') => TrustedHost::Exact(netloc.to_owned()),
                _ => return Err(invalid()),
            };
            trusted.push(Trusted {
                scheme: scheme.to_owned(),
                host,
            });
        }
        Ok(Self(trusted))
    }
}

impl TrustedOrigins {
    /// Whether `origin` (an `Origin` header: `scheme://host[:port]`, nothing after) is one of
    /// these, or a subdomain a `*.domain` covers, on its scheme.
    pub fn contains(&self, origin: &str) -> bool {
        let Some((scheme, netloc, "")) = split_url(origin) else {
            return false;
        };
        self.0.iter().any(|trusted| {
            trusted.scheme.eq_ignore_ascii_case(scheme) && trusted.host.matches(netloc)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `scheme://netloc` and whatever follows the netloc (path, query, fragment), as Python's
/// `urlsplit` reads them; `None` without a scheme or a netloc.
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (netloc, after) = rest.split_at(end);
    let netloc_ok = !netloc.is_empty() && !netloc.contains(|c: char| c.is_ascii_whitespace());
    (scheme_ok && netloc_ok).then_some((scheme, netloc, after))
}

/// The check of a request that would open a session.
#[derive(Debug, Clone, Default)]
pub struct OriginCheck {
    pub trusted: Arc<TrustedOrigins>,
    /// Whether the request came over HTTPS (by a proxy in front of the gateway), as
    /// [`Secure`] says: its own origin is then `https://` and a request without `Origin` has
    /// its `Referer` checked.
    pub https: bool,
}

impl OriginCheck {
    /// Django's checks, in its order, of a request whose `Host` (checked against
    /// `ALLOWED_HOSTS`, port included) is `host`.
    pub fn check(&self, headers: &HeaderMap, host: Option<&str>) -> Result<(), Refusal> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            return if self.origin_verified(&origin, host) {
                Ok(())
            } else {
                Err(Refusal::CsrfBadOrigin(origin.into_owned()))
            };
        }
        match headers.get(header::REFERER) {
            Some(referer) if self.https => {
                self.check_referer(&String::from_utf8_lossy(referer.as_bytes()), host)
            }
            _ => Ok(()),
        }
    }

    /// Django's `_origin_verified`: the gateway's own origin, a trusted one, or a subdomain a
    /// trusted `*.domain` covers, on its scheme.
    fn origin_verified(&self, origin: &str, host: Option<&str>) -> bool {
        let scheme = if self.https { "https" } else { "http" };
        if host.is_some_and(|host| origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))) {
            return true;
        }
        self.trusted.contains(origin)
    }

    /// Django's `_check_referer`, for an HTTPS request without `Origin`: the `Referer` must be
    /// an HTTPS page of a trusted host (whatever its scheme) or of the request's own host.
    fn check_referer(&self, referer: &str, host: Option<&str>) -> Result<(), Refusal> {
        let (scheme, netloc, _) = split_url(referer).ok_or(Refusal::CsrfMalformedReferer)?;
        if !scheme.eq_ignore_ascii_case("https") {
            return Err(Refusal::CsrfInsecureReferer);
        }
        let own = host.is_some_and(|host| netloc.eq_ignore_ascii_case(host));
        if own || self.trusted.0.iter().any(|t| t.host.matches(netloc)) {
            Ok(())
        } else {
            Err(Refusal::CsrfBadReferer(referer.to_owned()))
        }
    }
}

/// What [`OriginCheck`] says of the request: taken by every login route, heeded by the one
/// that opens a session.
#[derive(Debug)]
pub struct OriginVerdict(pub Result<(), Refusal>);

impl<S> FromRequestParts<S> for OriginVerdict
where
    Arc<TrustedOrigins>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let host = parts.extensions.get::<RequestHost>();
        let host = host.map(|RequestHost(host)| host.as_str());
        let check = OriginCheck {
            trusted: Arc::from_ref(state),
            https: parts
                .extensions
                .get::<Secure>()
                .is_some_and(|secure| secure.0),
        };
        Ok(Self(check.check(&parts.headers, host)))
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn check(
        trusted: &str,
        https: bool,
        pairs: &[(header::HeaderName, &'static str)],
    ) -> Result<(), Refusal> {
        let headers: HeaderMap = pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_static(value)))
            .collect();
        let check = OriginCheck {
            trusted: Arc::new(trusted.parse().unwrap()),
            https,
        };
        check.check(&headers, Some("api.example.com:8000"))
    }

    #[test]
    fn the_origin_must_be_the_requests_own_or_trusted() {
        let origin = |value| [(header::ORIGIN, value)];
        assert_eq!(
            check("", false, &origin("http://api.example.com:8000")),
            Ok(())
        );
        for (trusted, value) in [
            ("https://app.example.com", "https://app.example.com"),
            ("https://*.example.com", "https://app.example.com"),
            ("https://*.example.com", "https://example.com"),
            (
                "http://a.test, https://*.example.com:8443",
                "https://x.y.example.com:8443",
            ),
        ] {
            assert_eq!(check(trusted, false, &origin(value)), Ok(()), "{value}");
        }
        for (trusted, https, value) in [
            ("", false, "https://evil.example"),
            ("", false, "null"),
            // Another scheme or port is another origin.
            ("", true, "http://api.example.com:8000"),
            ("", false, "http://api.example.com"),
            ("https://app.example.com", false, "http://app.example.com"),
            (
                "https://app.example.com",
                false,
                "https://app.example.com/path",
            ),
            ("https://*.example.com", false, "https://badexample.com"),
            ("https://*.example.com", false, "https://example.com.evil"),
            (
                "https://*.example.com",
                false,
                "https://app.example.com:8443",
            ),
        ] {
            assert_eq!(
                check(trusted, https, &origin(value)),
                Err(Refusal::CsrfBadOrigin(value.to_owned())),
                "{trusted} {value}"
            );
        }
    }

    #[test]
    fn without_origin_only_an_https_request_has_its_referer_checked() {
        let referer = |value| [(header::REFERER, value)];
        assert_eq!(check("", false, &[]), Ok(()));
        assert_eq!(check("", true, &[]), Ok(()));
        assert_eq!(check("", false, &referer("https://evil.example/")), Ok(()));
        assert_eq!(
            check("", true, &referer("https://api.example.com:8000/login")),
            Ok(())
        );
        assert_eq!(
            check(
                "http://*.example.com",
                true,
                &referer("https://app.example.com/")
            ),
            Ok(())
        );
        assert_eq!(
            check("", true, &referer("https://evil.example/x")),
            Err(Refusal::CsrfBadReferer("https://evil.example/x".to_owned()))
        );
        assert_eq!(
            check("", true, &referer("http://api.example.com:8000/")),
            Err(Refusal::CsrfInsecureReferer)
        );
        assert_eq!(
            check("", true, &referer("/login")),
            Err(Refusal::CsrfMalformedReferer)
        );
    }

    #[test]
    fn refuses_trusted_origins_that_could_never_match() {
        for bad in [
            "app.example.com",
            "https://",
            "https://app.example.com/",
            "https://a*.example.com",
            "https://*.",
            "*",
        ] {
            assert!(bad.parse::<TrustedOrigins>().is_err(), "{bad:?}");
        }
        assert_eq!("".parse::<TrustedOrigins>(), Ok(TrustedOrigins::default()));
    }
}
