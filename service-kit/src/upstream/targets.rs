//! [`Targets`], the endpoints `AUTH_URL` or `INVENTORY_URL` list: parsed and checked at
//! start-up, shown again as they were given.

use std::{fmt, str::FromStr};

/// One or more `http://host:port` endpoints, comma-separated. A host may be a name that resolves
/// to several addresses (a scaled docker-compose service): each address is a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets(Vec<Target>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// A name or an IP literal (IPv6 without its brackets).
    host: String,
    port: u16,
}

impl FromStr for Targets {
    type Err = String;

    /// `https://` is refused: this build has no TLS, so every call would fail later, one by one,
    /// instead of at start-up.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let targets = value
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let uri: http::Uri = part.parse().map_err(|err| format!("{part}: {err}"))?;
                match (uri.scheme_str(), uri.host()) {
                    (Some("http"), Some(host)) => Ok(Target {
                        host: host
                            .trim_start_matches('[')
                            .trim_end_matches(']')
                            .to_owned(),
                        port: uri.port_u16().unwrap_or(80),
                    }),
                    (Some("https"), _) => Err("https is not supported (this build has no TLS): \
                         use http://host:port, with TLS terminated in front of the service if \
                         needed"
                        .to_owned()),
                    _ => Err(format!("{part}: expected http://host:port")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err("expected http://host:port, or several separated by commas".to_owned());
        }
        Ok(Self(targets))
    }
}

impl Targets {
    /// Each endpoint's host (a name or an IP literal, IPv6 without its brackets) and port.
    pub(super) fn endpoints(&self) -> impl Iterator<Item = (&str, u16)> {
        self.0
            .iter()
            .map(|target| (target.host.as_str(), target.port))
    }
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, Target { host, port }) in self.0.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            if host.contains(':') {
                write!(f, "{comma}http://[{host}]:{port}")?;
            } else {
                write!(f, "{comma}http://{host}:{port}")?;
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
        assert_eq!(targets.0[2].host, "::1");
        for bad in ["", ",", "auth:50051", "ftp://auth", "http://a:1,b:2"] {
            assert!(bad.parse::<Targets>().is_err(), "{bad:?}");
        }
        let https = "https://auth:50051".parse::<Targets>().unwrap_err();
        assert!(https.contains("https is not supported"), "{https}");
    }
}
