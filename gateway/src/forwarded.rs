//! Who the client is, and whether it reached us over HTTPS, when proxies stand in front of the
//! gateway (`TRUSTED_PROXIES`, `NUM_PROXIES`): worked out once per request by [`identify`], which
//! puts a [`ClientAddress`] and a [`Secure`] in the request's extensions for the throttle, the
//! caller (the login lockout's `x-client-address`), the request log, the cookies, the origin
//! check and the links to read.
//!
//! The forwarding headers (`X-Forwarded-For`, `X-Forwarded-Proto`) are read only from a peer that
//! is a trusted proxy (with `NUM_PROXIES` alone, from any peer, as DRF reads them); anyone else
//! could forge them. RFC 7239's `Forwarded` is not read: a proxy that writes only one of the
//! two kinds passes the other on as the client wrote it, so reading both would let a client
//! name itself.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    str::FromStr,
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::Response,
};
use http::HeaderMap;
use ipnet::IpNet;

/// The client of a request: the TCP peer, or the address the trusted proxies say they forwarded
/// for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// Whether the client's request came over HTTPS: `SESSION_COOKIE_SECURE` says so for every
/// request, a trusted proxy's `X-Forwarded-Proto: https` for its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Secure(pub bool);

/// `TRUSTED_PROXIES`: addresses and networks (`10.0.0.5`, `10.1.0.0/16`, `fd00::/8`),
/// comma-separated; empty trusts none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|network| network.contains(&address))
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        value
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let network = entry.parse::<IpNet>().or_else(|_| {
                    entry
                        .parse::<IpAddr>()
                        .map(|address| IpNet::from(address.to_canonical()))
                });
                network.map(|network| network.trunc()).map_err(|_| {
                    format!("{entry:?} is not an IP address or CIDR (such as 10.0.0.0/8)")
                })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// `NUM_PROXIES`: how many proxies stand in front of the gateway, DRF's setting; empty (the
/// default) when unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyCount(pub Option<usize>);

impl FromStr for ProxyCount {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.trim().is_empty() {
            return Ok(Self(None));
        }
        match value.trim().parse::<usize>() {
            Ok(count) if count <= 32 => Ok(Self(Some(count))),
            _ => Err(format!(
                "expected a count of proxies, 0 to 32, got {value:?}"
            )),
        }
    }
}

/// How the client of a request is worked out.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    pub trusted: TrustedProxies,
    pub count: ProxyCount,
    /// `SESSION_COOKIE_SECURE`: every request counts as HTTPS.
    pub always_secure: bool,
}

impl Proxies {
    /// Whether `peer`'s forwarding headers are read: it is a trusted proxy, or none is named
    /// and `NUM_PROXIES` says proxies stand in front.
    fn believes(&self, peer: IpAddr) -> bool {
        if self.trusted.0.is_empty() {
            self.count.0.is_some_and(|count| count > 0)
        } else {
            self.trusted.contains(peer)
        }
    }

    /// The client and the scheme of a request from `peer` with `headers`.
    pub fn identify(&self, peer: IpAddr, headers: &HeaderMap) -> (ClientAddress, Secure) {
        let peer = peer.to_canonical();
        if !self.believes(peer) {
            return (ClientAddress(peer), Secure(self.always_secure));
        }
        let hops = forwarded_for(headers);
        let client = match self.count.0 {
            Some(count) => counted(&hops, count),
            None => self.first_untrusted(&hops),
        };
        let https = headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .is_some_and(|scheme| scheme.trim().eq_ignore_ascii_case("https"));
        (
            ClientAddress(client.unwrap_or(peer)),
            Secure(self.always_secure || https),
        )
    }

    /// Walking from the right, the first address that is not a trusted proxy. A malformed entry
    /// stops the walk at the trusted hop to its right (the peer if none): whatever lies left of
    /// it is the client's to write. Every entry trusted: the leftmost.
    fn first_untrusted(&self, hops: &[Option<IpAddr>]) -> Option<IpAddr> {
        let mut nearest = None;
        for hop in hops.iter().rev() {
            match *hop {
                Some(address) if self.trusted.contains(address) => nearest = Some(address),
                Some(address) => return Some(address),
                None => break,
            }
        }
        nearest
    }
}

/// DRF's `NUM_PROXIES`: the entry `count` from the right. Fewer entries than that, or a
/// malformed one there: the request did not come through every proxy, and the peer stands.
fn counted(hops: &[Option<IpAddr>], count: usize) -> Option<IpAddr> {
    let index = hops.len().checked_sub(count)?;
    hops.get(index).copied().flatten()
}

/// The entries of every `X-Forwarded-For` header, in order, each an address or `None` when
/// malformed (`unknown`, an obfuscated name, bytes that are not text).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            text.split(',').map(parse_hop).collect::<Vec<_>>()
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]` or `[::1]:80`, as proxies write an entry.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let address = entry.parse::<IpAddr>().ok().or_else(|| {
        entry
            .parse::<SocketAddr>()
            .map(|socket| socket.ip())
            .ok()
            .or_else(|| {
                let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
                inner.parse::<IpAddr>().ok()
            })
    })?;
    Some(address.to_canonical())
}

/// Middleware: puts the request's [`ClientAddress`] and [`Secure`] in its extensions.
pub async fn identify(
    State(proxies): State<Arc<Proxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let (client, secure) = proxies.identify(peer, request.headers());
    request.extensions_mut().insert(client);
    request.extensions_mut().insert(secure);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn proxies(trusted: &str, count: Option<usize>) -> Proxies {
        Proxies {
            trusted: trusted.parse().unwrap(),
            count: ProxyCount(count),
            always_secure: false,
        }
    }

    fn client(proxies: &Proxies, peer: &str, forwarded: &[&'static str]) -> String {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", HeaderValue::from_static(value));
        }
        let (ClientAddress(client), _) = proxies.identify(peer.parse().unwrap(), &headers);
        client.to_string()
    }

    #[test]
    fn walks_from_the_right_past_trusted_proxies() {
        let trusted = proxies("10.0.0.0/8, fd00::1", None);
        assert_eq!(
            client(&trusted, "10.0.0.1", &["1.1.1.1, 2.2.2.2, 10.0.0.9"]),
            "2.2.2.2"
        );
        assert_eq!(
            client(&trusted, "10.0.0.1", &["1.1.1.1", "2.2.2.2"]),
            "2.2.2.2"
        );
        assert_eq!(
            client(&trusted, "fd00::1", &["[2001:db8::1]:443"]),
            "2001:db8::1"
        );
        assert_eq!(
            client(&trusted, "::ffff:10.0.0.1", &["3.3.3.3:80"]),
            "3.3.3.3"
        );
        // Every hop trusted: the leftmost; no header: the peer.
        assert_eq!(
            client(&trusted, "10.0.0.1", &["10.0.0.7, 10.0.0.8"]),
            "10.0.0.7"
        );
        assert_eq!(client(&trusted, "10.0.0.1", &[]), "10.0.0.1");
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = proxies("10.0.0.0/8", None);
        assert_eq!(client(&trusted, "8.8.8.8", &["1.1.1.1"]), "8.8.8.8");
        assert_eq!(
            client(&proxies("", None), "8.8.8.8", &["1.1.1.1"]),
            "8.8.8.8"
        );
    }

    #[test]
    fn a_malformed_entry_stops_the_walk_without_reaching_further_left() {
        let trusted = proxies("10.0.0.0/8", None);
        for header in [
            "1.1.1.1, unknown",
            "1.1.1.1, 999.1.1.1",
            "1.1.1.1,",
            "1.1.1.1, x, 10.0.0.3",
        ] {
            let chosen = client(&trusted, "10.0.0.1", &[header]);
            assert!(chosen.starts_with("10.0.0."), "{header}: {chosen}");
        }
    }

    #[test]
    fn num_proxies_takes_the_entry_that_many_from_the_right() {
        let two = proxies("", Some(2));
        assert_eq!(
            client(&two, "9.9.9.9", &["6.6.6.6, 1.1.1.1, 10.0.0.2"]),
            "1.1.1.1"
        );
        // Fewer hops than proxies, or a malformed one there: the peer.
        assert_eq!(client(&two, "9.9.9.9", &["1.1.1.1"]), "9.9.9.9");
        assert_eq!(client(&two, "9.9.9.9", &["junk, 10.0.0.2"]), "9.9.9.9");
        assert_eq!(
            client(&proxies("", Some(0)), "9.9.9.9", &["1.1.1.1"]),
            "9.9.9.9"
        );
        // With trusted proxies named too, only theirs are read.
        let both = proxies("10.0.0.1", Some(1));
        assert_eq!(client(&both, "10.0.0.1", &["1.1.1.1, 2.2.2.2"]), "2.2.2.2");
        assert_eq!(client(&both, "9.9.9.9", &["1.1.1.1, 2.2.2.2"]), "9.9.9.9");
    }

    #[test]
    fn forwarded_https_counts_from_a_trusted_proxy_only() {
        let trusted = proxies("10.0.0.1", None);
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        let secure = |peer: &str| trusted.identify(peer.parse().unwrap(), &headers).1;
        assert_eq!(secure("10.0.0.1"), Secure(true));
        assert_eq!(secure("10.0.0.2"), Secure(false));
    }

    #[test]
    fn settings_are_checked() {
        for bad in ["10.0.0.0/33", "example.com", "10.0.0", "::1/129"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
        let parsed: TrustedProxies = " 10.1.2.3/16 , ::1 ".parse().unwrap();
        assert!(parsed.contains("10.1.200.1".parse().unwrap()));
        assert!(parsed.contains("::1".parse().unwrap()));
        assert!(!parsed.contains("10.2.0.1".parse().unwrap()));
        assert!("-1".parse::<ProxyCount>().is_err());
        assert!("many".parse::<ProxyCount>().is_err());
        assert_eq!("".parse::<ProxyCount>(), Ok(ProxyCount(None)));
    }
}
