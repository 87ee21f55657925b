//! [`Hops`]: how the services of a whole stack (`spawn_stack_on`) reach each other, plaintext
//! or mutual TLS, and what each service is given for it.

use service_kit::{
    testing::certificates::TestCa,
    tls::{ClientTls, ServerTls},
};

/// How the services of a stack reach each other.
pub enum Hops<'a> {
    Plaintext,
    /// Every gRPC hop over TLS, each server requiring a client certificate: all signed by
    /// this CA, one per service (`auth`, `inventory`, `gateway`), for `127.0.0.1`. Auth knows
    /// the others by them: `gateway` and `inventory` hold verdict caches, and `gateway` is the
    /// front end whose `x-client-address` it believes.
    MutualTls(&'a TestCa),
}

impl Hops<'_> {
    /// What the service `name` serves with.
    pub fn server(&self, name: &str) -> Option<ServerTls> {
        let Self::MutualTls(ca) = self else {
            return None;
        };
        let (chain, key) = ca.issue(name);
        Some(ServerTls::from_pem(chain, key, Some(ca.certificate())).expect("a certificate"))
    }

    /// What the service `name` trusts and presents as a client.
    pub fn client(&self, name: &str) -> Option<ClientTls> {
        let Self::MutualTls(ca) = self else {
            return None;
        };
        Some(ClientTls::from_pem(ca.certificate(), Some(ca.issue(name))))
    }

    /// The URL of a server listening on `addr`.
    pub fn url(&self, addr: std::net::SocketAddr) -> http::Uri {
        let scheme = match self {
            Self::Plaintext => "http",
            Self::MutualTls(_) => "https",
        };
        format!("{scheme}://{addr}").parse().expect("a URL")
    }
}
