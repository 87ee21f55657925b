//! Credential keys: 40 lowercase hex characters (160 bits from the OS CSPRNG), of which only a
//! SHA-256 digest is ever stored.

use secrecy::{ExposeSecret, SecretString};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const KEY_BYTES: usize = 20;

/// Which way a credential is presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// Sent in the `Authorization` header.
    Token,
    /// Kept in the gateway's `sessionid` cookie.
    Session,
}

impl CredentialKind {
    pub fn as_db(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Session => "session",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        match value {
            "token" => Some(Self::Token),
            "session" => Some(Self::Session),
            _ => None,
        }
    }
}

/// A credential's secret key, as handed to its holder once: a `secrecy` string, whose `Debug`
/// is redacted and whose memory is wiped on drop.
#[derive(Clone, Debug)]
pub struct TokenKey(SecretString);

impl TokenKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        Self(hex::encode(bytes).into())
    }

    /// A presented key, if it has the shape of one; anything else cannot match and needs no
    /// database look-up.
    pub fn parse(raw: &str) -> Option<Self> {
        let well_formed = raw.len() == KEY_BYTES * 2
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| Self(raw.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest(hex::encode(Sha256::digest(self.expose().as_bytes())))
    }
}

/// Compared without an early exit, so the time taken tells nothing about a key.
impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl Eq for TokenKey {}

/// What the database stores and indexes in place of a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_40_lowercase_hex_and_distinct() {
        let (a, b) = (TokenKey::generate(), TokenKey::generate());
        assert_ne!(a, b);
        assert_eq!(TokenKey::parse(a.expose()), Some(a.clone()));
        assert_eq!(a.digest().0.len(), 64);
        assert_ne!(a.digest().0, a.expose());
    }

    #[test]
    fn malformed_keys_are_refused_before_any_lookup() {
        for bad in ["", "abc", &"A".repeat(40), &"g".repeat(40), &"a".repeat(41)] {
            assert!(TokenKey::parse(bad).is_none(), "{bad}");
        }
    }
}
