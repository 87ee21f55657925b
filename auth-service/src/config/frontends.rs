//! `TRUSTED_FRONTENDS`: the callers whose `x-client-address` is believed. The gateway names the
//! client it is calling for, so that failed logins are counted by the real client; a caller that
//! is not a trusted front end could name any address (to dodge the per-address lockout, or to
//! lock out an address of its choosing), so its own peer address is used instead. Front ends
//! are named by address or CIDR, or, under mutual TLS, by the identity their client
//! certificate carries (`gateway`).

use std::{net::IpAddr, str::FromStr};

use service_kit::tls::Identities;

/// Addresses, networks and identities, e.g. `10.0.0.5, 10.1.0.0/16, ::1, gateway`; empty
/// trusts nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedFrontends {
    networks: Vec<(IpAddr, u8)>,
    names: Identities,
}

impl TrustedFrontends {
    /// Every loopback address: for tests, where the test itself plays the gateway.
    pub fn loopback() -> Self {
        Self {
            networks: vec![
                (IpAddr::from([127, 0, 0, 0]), 8),
                (IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]), 128),
            ],
            names: Identities::default(),
        }
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks
            .iter()
            .any(|&(network, bits)| within(address, network, bits))
    }

    /// The front ends named by identity, known by their client certificates.
    pub fn names(&self) -> &Identities {
        &self.names
    }
}

fn within(address: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl FromStr for TrustedFrontends {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut trusted = Self::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            // A name has a letter; an address that does not parse stays an error.
            let named = entry.parse::<IpAddr>().is_err()
                && !entry.contains('/')
                && entry.bytes().any(|byte| byte.is_ascii_alphabetic());
            if named {
                trusted.names.push(entry).map_err(|err| {
                    format!("{err}: expected an IP address, a CIDR or a service identity")
                })?;
                continue;
            }
            let (address, bits) = match entry.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (entry, None),
            };
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("{entry:?} is not an IP address or CIDR"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|bits| *bits <= max)
                    .ok_or_else(|| format!("{entry:?}: a prefix length is 0 to {max}"))?,
                None => max,
            };
            trusted.networks.push((address.to_canonical(), bits));
        }
        Ok(trusted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_networks_are_matched_exactly() {
        let trusted: TrustedFrontends = "10.0.0.5, 10.1.0.0/16, ::1".parse().unwrap();
        for (address, expected) in [
            ("10.0.0.5", true),
            ("10.0.0.6", false),
            ("10.1.200.3", true),
            ("10.2.0.1", false),
            ("::1", true),
            ("::ffff:10.0.0.5", true),
            ("127.0.0.1", false),
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(trusted.contains(ip), expected, "{address}");
        }
        assert!(!TrustedFrontends::default().contains("127.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<TrustedFrontends>().is_err());
        assert!("10.0.0.300".parse::<TrustedFrontends>().is_err());
        assert!("gate way".parse::<TrustedFrontends>().is_err());
        let named: TrustedFrontends = "gateway, 10.0.0.5".parse().unwrap();
        assert!(!named.names().is_empty() && named.contains("10.0.0.5".parse().unwrap()));
        assert!(!named.contains("127.0.0.1".parse().unwrap()));
        assert_eq!(
            "".parse::<TrustedFrontends>(),
            Ok(TrustedFrontends::default())
        );
    }
}
