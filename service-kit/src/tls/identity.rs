//! Service identities under mutual TLS: the DNS names on the services' certificates
//! (`gateway`, `inventory`), as settings list them (`REVOCATION_HOLDERS`, the names in
//! `TRUSTED_FRONTENDS`), and which of them a caller's certificate carries. The chain itself was
//! verified in the handshake, against `TLS_CLIENT_CA_FILE`; here only its names are read.

use std::{fmt, str::FromStr};

use rustls::pki_types::{CertificateDer, ServerName};

/// Identities, comma-separated: `gateway, inventory`. Empty: none listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities(Vec<String>);

impl Identities {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `name` if it is a DNS name; `Err` with it otherwise.
    pub fn push(&mut self, name: &str) -> Result<(), String> {
        match ServerName::try_from(name) {
            Ok(ServerName::DnsName(_)) => {
                self.0.push(name.to_ascii_lowercase());
                Ok(())
            }
            _ => Err(format!("{name:?} is not a DNS name")),
        }
    }

    /// The first identity listed that the certificate chain `chain` (leaf first) carries as a
    /// DNS subject alternative name.
    pub fn of(&self, chain: &[CertificateDer<'_>]) -> Option<&str> {
        let leaf = webpki::EndEntityCert::try_from(chain.first()?).ok()?;
        self.0.iter().map(String::as_str).find(|identity| {
            ServerName::try_from(*identity)
                .is_ok_and(|name| leaf.verify_is_valid_for_subject_name(&name).is_ok())
        })
    }
}

impl FromStr for Identities {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut identities = Self::default();
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            identities.push(name)?;
        }
        Ok(identities)
    }
}

impl fmt::Display for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}
