//! `TRUSTED_FRONTENDS`: the callers whose `x-client-address` is believed. The gateway names the
//! client it is calling for, so that failed logins are counted by the real client; a caller that
//! is not a trusted front end could name any address (to dodge the per-address lockout, or to
//! lock out an address of its choosing), so its own peer address is used instead. Until the
//! services know each other by certificate, front ends are named by address or CIDR.

use std::{net::IpAddr, str::FromStr};

/// Addresses and networks, e.g. `10.0.0.5, 10.1.0.0/16, ::1`; empty trusts nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedFrontends(Vec<(IpAddr, u8)>);

impl TrustedFrontends {
    /// Every loopback address: for tests, where the test itself plays the gateway.
    pub fn loopback() -> Self {
        Self(vec![
            (IpAddr::from([127, 0, 0, 0]), 8),
            (IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]), 128),
        ])
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0
            .iter()
            .any(|&(network, bits)| within(address, network, bits))
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
        let mut entries = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
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
            entries.push((address.to_canonical(), bits));
        }
        Ok(Self(entries))
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
        assert!("gateway".parse::<TrustedFrontends>().is_err());
        assert_eq!(
            "".parse::<TrustedFrontends>(),
            Ok(TrustedFrontends::default())
        );
    }
}
