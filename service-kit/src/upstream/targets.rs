//! [`Targets`], the endpoints `AUTH_URL` or `INVENTORY_URL` list: parsed and checked at
//! start-up, shown again as they were given.

use std::{fmt, str::FromStr};

/// One or more `http://host:port` endpoints, comma-separated, or as many `https://` ones (TLS,
/// verified against `TLS_CA_FILE`), not a mix. A host may be a name that resolves to several
/// addresses (a scaled docker-compose service): each address is a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    endpoints: Vec<Target>,
    tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// A name or an IP literal (IPv6 without its brackets).
    host: String,
    port: u16,
}

impl FromStr for Targets {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut schemes = Vec::new();
        let endpoints = value
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let uri: http::Uri = part.parse().map_err(|err| format!("{part}: {err}"))?;
                match (uri.scheme_str(), uri.host()) {
                    (Some(scheme @ ("http" | "https")), Some(host)) => {
                        schemes.push(scheme == "https");
                        Ok(Target {
                            host: host
                                .trim_start_matches('[')
                                .trim_end_matches(']')
                                .to_owned(),
                            port: uri.port_u16().unwrap_or(if scheme == "https" {
                                443
                            } else {
                                80
                            }),
                        })
                    }
                    _ => Err(format!(
                        "{part}: expected http://host:port or https://host:port"
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err("expected http://host:port, or several separated by commas".to_owned());
        }
        let tls = schemes[0];
        if schemes.iter().any(|&https| https != tls) {
            return Err(
                "mixes http:// and https:// endpoints: replicas of one service are \
                        reached alike"
                    .to_owned(),
            );
        }
        Ok(Self { endpoints, tls })
    }
}

impl Targets {
    /// Each endpoint's host (a name or an IP literal, IPv6 without its brackets) and port.
    pub(super) fn endpoints(&self) -> impl Iterator<Item = (&str, u16)> {
        self.endpoints
            .iter()
            .map(|target| (target.host.as_str(), target.port))
    }
}

impl Targets {
    /// Whether the endpoints are `https://`.
    pub fn tls(&self) -> bool {
        self.tls
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        for (i, Target { host, port }) in self.endpoints.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            if host.contains(':') {
                write!(f, "{comma}{scheme}://[{host}]:{port}")?;
            } else {
                write!(f, "{comma}{scheme}://{host}:{port}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_http_endpoints_separated_by_commas() {
        let targets: Targets = "http://auth:50051, http://10.0.0.2:7,http://[::1]:9"
            .parse()
            .unwrap();
        assert_eq!(
            targets.to_string(),
            "http://auth:50051,http://10.0.0.2:7,http://[::1]:9"
        );
        assert_eq!(targets.endpoints[2].host, "::1");
        assert!(!targets.tls());
        for bad in ["", ",", "auth:50051", "ftp://auth", "http://a:1,b:2"] {
            assert!(bad.parse::<Targets>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn https_targets_are_all_https() {
        let targets: Targets = "https://auth:50051,https://auth-2".parse().unwrap();
        assert!(targets.tls());
        assert_eq!(targets.to_string(), "https://auth:50051,https://auth-2:443");
        let mixed = "https://auth:1,http://auth:2"
            .parse::<Targets>()
            .unwrap_err();
        assert!(mixed.contains("mixes http:// and https://"), "{mixed}");
    }
}
