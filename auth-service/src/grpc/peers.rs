//! Who calls, as the transport tells it: the client a login comes from (the caller's own
//! address, or the one a trusted front end names in `x-client-address`), and whether a caller
//! may hold a verdict cache (`REVOCATION_HOLDERS`). Front ends are known by address or network
//! (`TRUSTED_FRONTENDS`, for plaintext set-ups) or, under mutual TLS, by the identity their
//! client certificate carries; holders by identity only. A refusal, and an `x-client-address`
//! ignored, is logged once per peer address, not per call.

use std::{
    collections::HashSet,
    net::IpAddr,
    sync::{Mutex, PoisonError},
};

use proto::credentials;
use service_kit::tls::Identities;
use tonic::Request;

use crate::{config::TrustedFrontends, error::AuthError};

/// How many refusals are remembered as logged; past it the memory starts again (so a flood of
/// peers costs a bounded set, and a line per peer per this many).
const MAX_LOGGED: usize = 1024;

pub struct Peers {
    frontends: TrustedFrontends,
    holders: Identities,
    logged: Mutex<HashSet<(Option<IpAddr>, &'static str)>>,
}

impl Peers {
    pub fn new(frontends: TrustedFrontends, holders: Identities) -> Self {
        Self {
            frontends,
            holders,
            logged: Mutex::default(),
        }
    }

    /// The client an attempt comes from: the address a trusted front end (the gateway) names,
    /// else the caller's own.
    pub(super) fn client_address<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        let peer = peer_of(request);
        let Some(named) = request.metadata().get(credentials::CLIENT_ADDRESS_KEY) else {
            return peer;
        };
        if !self.is_frontend(request) {
            self.once(
                peer,
                "x-client-address ignored: the caller is no trusted front end (TRUSTED_FRONTENDS)",
            );
            return peer;
        }
        let named = named
            .to_str()
            .ok()
            .and_then(|value| value.trim().parse().ok());
        named.or(peer)
    }

    fn is_frontend<T>(&self, request: &Request<T>) -> bool {
        peer_of(request).is_some_and(|peer| self.frontends.contains(peer))
            || request
                .peer_certs()
                .is_some_and(|chain| self.frontends.names().of(&chain).is_some())
    }

    /// Whether the caller may open `WatchRevocations`: any caller when `REVOCATION_HOLDERS`
    /// lists none, else one whose client certificate carries an identity it lists.
    pub(super) fn may_hold<T>(&self, request: &Request<T>) -> Result<(), AuthError> {
        if self.holders.is_empty() {
            return Ok(());
        }
        let Some(chain) = request.peer_certs() else {
            self.once(
                peer_of(request),
                "WatchRevocations refused: no client certificate",
            );
            return Err(AuthError::PeerUnidentified);
        };
        if self.holders.of(&chain).is_some() {
            return Ok(());
        }
        self.once(
            peer_of(request),
            "WatchRevocations refused: the caller's certificate names no REVOCATION_HOLDERS identity",
        );
        Err(AuthError::NotAHolder)
    }

    /// Logs `what` of `peer` unless it was logged already; whether it was logged now.
    fn once(&self, peer: Option<IpAddr>, what: &'static str) -> bool {
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        if logged.len() >= MAX_LOGGED {
            logged.clear();
        }
        let first = logged.insert((peer, what));
        if first {
            tracing::warn!(peer = ?peer, "{what}");
        }
        first
    }
}

fn peer_of<T>(request: &Request<T>) -> Option<IpAddr> {
    request.remote_addr().map(|addr| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_logged_once_per_peer() {
        let peers = Peers::new(TrustedFrontends::default(), Identities::default());
        let (one, other) = (
            Some(IpAddr::from([10, 0, 0, 1])),
            Some(IpAddr::from([10, 0, 0, 2])),
        );
        assert!(peers.once(one, "refused"));
        assert!(!peers.once(one, "refused"));
        assert!(peers.once(other, "refused"));
        assert!(peers.once(one, "refused otherwise"));
    }
}
