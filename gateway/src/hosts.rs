//! `ALLOWED_HOSTS`, as Django checks it: the `Host` a request names must be one the gateway is
//! served as, or the request is Django's plain 400. The `Host` is copied into the absolute URLs
//! of paging links, so an unchecked one would let anyone put their own site into them.
//!
//! The probes and the scrape ([`ANY_HOST`]) answer whatever the `Host`: the kubelet and
//! Prometheus name the pod by its IP, and these answers link nowhere.

use std::str::FromStr;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::header;

use crate::error::ApiError;

/// The hosts the gateway answers for (`ALLOWED_HOSTS`): names compared ignoring case and port;
/// `.example.com` also matches every subdomain of `example.com`; `*` matches any host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts(Vec<String>);

/// The `Host` of a request that passed [`check`], as the client sent it (port included): what
/// absolute URLs are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHost(pub String);

impl AllowedHosts {
    /// Whether `host` (a `Host` header value) is well formed and allowed. A malformed one is
    /// refused even under `*`, as Django does, so a link can never carry one.
    pub fn allows(&self, host: &str) -> bool {
        let Some(domain) = domain_of(host) else {
            return false;
        };
        self.0.iter().any(|pattern| {
            pattern == "*"
                || *pattern == domain
                || pattern
                    .strip_prefix('.')
                    .is_some_and(|parent| domain == parent || domain.ends_with(pattern.as_str()))
        })
    }
}

impl AllowedHosts {
    /// A host these patterns allow, for the container's health probe to send: the first name,
    /// the domain of the first `.domain`, or `localhost` under `*`.
    pub fn an_allowed_host(&self) -> &str {
        self.0
            .iter()
            .find(|pattern| *pattern != "*")
            .map_or("localhost", |pattern| {
                pattern.strip_prefix('.').unwrap_or(pattern)
            })
    }
}

impl FromStr for AllowedHosts {
    type Err = String;

    /// A comma-separated list of names, `.`-prefixed names and `*`.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut patterns = Vec::new();
        for pattern in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let pattern = pattern.to_ascii_lowercase();
            // A pattern is matched against a name without its port, so one with a port (or any
            // other character a host cannot have) would never match: refuse it at start-up.
            let name = pattern.strip_prefix('.').unwrap_or(&pattern);
            if pattern != "*" && domain_of(name).as_deref() != Some(name) {
                return Err(format!(
                    "{pattern:?} is not a host name, .domain or * (ports are not part of it)"
                ));
            }
            patterns.push(pattern);
        }
        if patterns.is_empty() {
            return Err("expected at least one host, or *".to_owned());
        }
        Ok(Self(patterns))
    }
}

/// The domain of a `Host` value, lowercased, without its port and trailing dot; `None` when the
/// value is not `name[:port]` or `[ipv6][:port]` (Django's `split_domain_port`).
fn domain_of(host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let port_ok = |port: &str| port.is_empty() || port.bytes().all(|b| b.is_ascii_digit());
    let (domain, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        let (literal, rest) = host.split_at(end + 1);
        let inner = &literal[1..literal.len() - 1];
        let (head, tail) = inner.split_once(':')?;
        let hex = |part: &str, extra: &[u8]| {
            part.bytes()
                .all(|b| b.is_ascii_hexdigit() || extra.contains(&b))
        };
        if !hex(head, b"") || tail.is_empty() || !hex(tail, b".:") {
            return None;
        }
        // Django keeps a bracketed address whole and ignores a port after it.
        (literal.to_owned(), rest.strip_prefix(':').unwrap_or(rest))
    } else {
        let (domain, port) = host.split_once(':').unwrap_or((&host, ""));
        let domain_ok = !domain.is_empty()
            && domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !domain_ok {
            return None;
        }
        (domain.strip_suffix('.').unwrap_or(domain).to_owned(), port)
    };
    let port_required = host.ends_with(':');
    (port_ok(port) && !port_required && !domain.is_empty()).then_some(domain)
}

/// The paths served whatever the `Host` (after the trailing slash is added): liveness,
/// readiness and metrics.
pub const ANY_HOST: [&str; 3] = ["/healthz/", "/readyz/", "/metrics/"];

/// Middleware: Django's 400 for a request whose `Host` is missing, malformed or not allowed
/// (but for the [`ANY_HOST`] paths); otherwise the host goes on as [`RequestHost`]. An HTTP/2
/// request names its host in `:authority` (the URI's), and may send no `Host` at all.
pub async fn check(
    State(allowed): State<std::sync::Arc<AllowedHosts>>,
    mut request: Request,
    next: Next,
) -> Response {
    let named = match request.headers().get(header::HOST) {
        Some(value) => value.to_str().ok(),
        None => request
            .uri()
            .authority()
            .map(|authority| authority.as_str()),
    };
    let host = named.filter(|host| allowed.allows(host)).map(str::to_owned);
    match host {
        Some(host) => {
            request.extensions_mut().insert(RequestHost(host));
            next.run(request).await
        }
        None if ANY_HOST.contains(&request.uri().path()) => next.run(request).await,
        None => {
            tracing::info!(host = ?request.headers().get(header::HOST), "disallowed Host");
            ApiError::DisallowedHost.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(value: &str) -> AllowedHosts {
        value.parse().unwrap()
    }

    #[test]
    fn the_default_allows_loopback_on_any_port() {
        let allowed = hosts("localhost,127.0.0.1,[::1]");
        for host in [
            "localhost",
            "LocalHost:8000",
            "localhost.",
            "127.0.0.1:50000",
            "[::1]",
            "[::1]:8000",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.2",
            "[::2]",
            "localhost:",
            "localhost:80x",
            "local host",
            "localhost/x",
            "user@localhost",
        ] {
            assert!(!allowed.allows(host), "{host:?}");
        }
    }

    #[test]
    fn a_leading_dot_matches_the_domain_and_its_subdomains() {
        let allowed = hosts(".example.com");
        assert!(allowed.allows("example.com"));
        assert!(allowed.allows("api.EXAMPLE.com:443"));
        assert!(!allowed.allows("badexample.com"));
        assert!(!allowed.allows("example.com.evil"));
    }

    #[test]
    fn a_star_allows_any_well_formed_host() {
        let allowed = hosts("*");
        assert!(allowed.allows("anything.test:1"));
        assert!(!allowed.allows("evil.test/path"));
        assert!(!allowed.allows("a\"b"));
    }

    #[test]
    fn names_a_host_it_allows() {
        for list in ["api.example.com,localhost", ".example.com", "*", "*,[::1]"] {
            let allowed = hosts(list);
            assert!(allowed.allows(allowed.an_allowed_host()), "{list}");
        }
    }

    #[test]
    fn refuses_patterns_that_could_never_match() {
        for bad in ["", " , ", "localhost:8000", "http://localhost", "a b"] {
            assert!(bad.parse::<AllowedHosts>().is_err(), "{bad:?}");
        }
    }
}
