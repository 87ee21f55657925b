//! Django's password hash formats, verified with Django's exact algorithms, so that users
//! imported from a Django app keep their passwords until their first login replaces the hash
//! with ours. The reference is `django/contrib/auth/hashers.py`:
//!
//! - `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` and `pbkdf2_sha1$…`: PBKDF2-HMAC over the
//!   UTF-8 password and salt, as long as the digest, in padded standard base64;
//! - `argon2$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`: `argon2` before a PHC string (argon2-cffi
//!   writes it; older Djangos used argon2i);
//! - `bcrypt_sha256$$2b$<cost>$…`: bcrypt over the hex SHA-256 of the password (so long passwords
//!   are not cut at 72 bytes).

use argon2::{Algorithm, Argon2, PasswordHash, Version};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Work factors above these are refused at import: a hash that would take a login seconds (or
/// gigabytes) to check is a denial of service, not a password. Django's defaults are far below:
/// 1,200,000 PBKDF2 iterations, argon2 with 100 MiB, bcrypt cost 12.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
const MAX_ARGON2_MEMORY_KIB: u32 = 1 << 20;
const MAX_ARGON2_PASSES: u32 = 64;
const MAX_BCRYPT_COST: u32 = 16;

/// A password hash in one of Django's formats, checked for shape (not yet for a password).
#[derive(Clone, PartialEq, Eq)]
pub enum DjangoHash {
    Pbkdf2 {
        digest: Pbkdf2Digest,
        iterations: u32,
        salt: String,
        hash: Vec<u8>,
    },
    /// The PHC string after Django's `argon2` prefix.
    Argon2 { phc: String },
    /// The bcrypt string after Django's `bcrypt_sha256$` prefix.
    BcryptSha256 { bcrypt: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pbkdf2Digest {
    Sha256,
    Sha1,
}

impl Pbkdf2Digest {
    fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha1 => 20,
        }
    }
}

/// Why a stored value is no hash Django could have written; the message is for the console.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HashFormatError(String);

impl HashFormatError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

fn malformed(algorithm: &str, what: &str) -> HashFormatError {
    HashFormatError(format!("malformed {algorithm} hash: {what}"))
}

impl DjangoHash {
    /// Reads `encoded` as Django stores it. Unusable passwords (`!…`) are not hashes: the caller
    /// tells them apart first.
    pub fn parse(encoded: &str) -> Result<Self, HashFormatError> {
        let Some((algorithm, rest)) = encoded.split_once('$') else {
            return Err(HashFormatError(
                "not a Django password hash (no algorithm before `$`)".to_owned(),
            ));
        };
        match algorithm {
            "pbkdf2_sha256" => parse_pbkdf2(algorithm, Pbkdf2Digest::Sha256, rest),
            "pbkdf2_sha1" => parse_pbkdf2(algorithm, Pbkdf2Digest::Sha1, rest),
            "argon2" => parse_argon2(rest),
            "bcrypt_sha256" => parse_bcrypt(rest),
            other => Err(HashFormatError(format!(
                "unsupported password hash algorithm {other:?} (supported: pbkdf2_sha256, \
                 pbkdf2_sha1, argon2, bcrypt_sha256)"
            ))),
        }
    }

    /// Whether `password` is the one this hash was made from. Slow by design: run it off the
    /// async workers.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Self::Pbkdf2 {
                digest,
                iterations,
                salt,
                hash,
            } => {
                let computed = pbkdf2(*digest, password, salt, *iterations);
                computed.ct_eq(hash).into()
            }
            Self::Argon2 { phc } => verify_argon2(phc, password),
            Self::BcryptSha256 { bcrypt } => {
                let prehashed = hex::encode(Sha256::digest(password.as_bytes()));
                bcrypt::verify(prehashed, bcrypt).unwrap_or(false)
            }
        }
    }
}

/// Only the algorithm shows: the salt and hash are as secret as the password itself.
impl std::fmt::Debug for DjangoHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithm = match self {
            Self::Pbkdf2 {
                digest: Pbkdf2Digest::Sha256,
                ..
            } => "pbkdf2_sha256",
            Self::Pbkdf2 {
                digest: Pbkdf2Digest::Sha1,
                ..
            } => "pbkdf2_sha1",
            Self::Argon2 { .. } => "argon2",
            Self::BcryptSha256 { .. } => "bcrypt_sha256",
        };
        write!(f, "DjangoHash({algorithm}, <redacted>)")
    }
}

fn pbkdf2(digest: Pbkdf2Digest, password: &str, salt: &str, iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; digest.output_len()];
    let (password, salt) = (password.as_bytes(), salt.as_bytes());
    match digest {
        Pbkdf2Digest::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
        Pbkdf2Digest::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
    }
    out
}

/// With the hash's own variant, version and parameters. A PHC string without `v=` is Argon2
/// 1.0 (argon2-cffi wrote such before version 16), which the argon2 crate's verifier would
/// read as 1.3, so the output is computed here.
fn verify_argon2(phc: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let version = match parsed.version {
        Some(version) => Version::try_from(version),
        None => Ok(Version::V0x10),
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        version,
        argon2::Params::try_from(&parsed),
    ) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut output = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into(password.as_bytes(), salt, &mut output)
        .is_ok_and(|()| output.ct_eq(expected.as_bytes()).into())
}

fn parse_pbkdf2(
    algorithm: &str,
    digest: Pbkdf2Digest,
    rest: &str,
) -> Result<DjangoHash, HashFormatError> {
    let mut parts = rest.splitn(3, '$');
    let (Some(iterations), Some(salt), Some(hash)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(algorithm, "expected <iterations>$<salt>$<hash>"));
    };
    let iterations: u32 = iterations
        .parse()
        .ok()
        .filter(|n| (1..=MAX_PBKDF2_ITERATIONS).contains(n))
        .ok_or_else(|| {
            malformed(
                algorithm,
                &format!("iterations must be 1 to {MAX_PBKDF2_ITERATIONS}"),
            )
        })?;
    if salt.is_empty() {
        return Err(malformed(algorithm, "empty salt"));
    }
    let hash = STANDARD
        .decode(hash)
        .ok()
        .filter(|bytes| bytes.len() == digest.output_len())
        .ok_or_else(|| {
            malformed(
                algorithm,
                &format!("the hash is not {} bytes of base64", digest.output_len()),
            )
        })?;
    Ok(DjangoHash::Pbkdf2 {
        digest,
        iterations,
        salt: salt.to_owned(),
        hash,
    })
}

fn parse_argon2(rest: &str) -> Result<DjangoHash, HashFormatError> {
    let phc = format!("${rest}");
    let parsed = PasswordHash::new(&phc).map_err(|err| malformed("argon2", &err.to_string()))?;
    Algorithm::try_from(parsed.algorithm)
        .map_err(|_| malformed("argon2", "unknown argon2 variant"))?;
    let params =
        argon2::Params::try_from(&parsed).map_err(|err| malformed("argon2", &err.to_string()))?;
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB || params.t_cost() > MAX_ARGON2_PASSES {
        return Err(malformed(
            "argon2",
            &format!(
                "work factors above m={MAX_ARGON2_MEMORY_KIB},t={MAX_ARGON2_PASSES} are refused"
            ),
        ));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err(malformed("argon2", "missing salt or hash"));
    }
    Ok(DjangoHash::Argon2 { phc })
}

/// `$2b$12$` + 22 characters of salt + 31 of hash, in bcrypt's own base64 alphabet.
fn parse_bcrypt(rest: &str) -> Result<DjangoHash, HashFormatError> {
    let fail = |what: &str| malformed("bcrypt_sha256", what);
    let mut parts = rest.split('$');
    let (Some(""), Some(version), Some(cost), Some(body), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(fail("expected $2b$<cost>$<salt and hash>"));
    };
    if !matches!(version, "2a" | "2b" | "2y") {
        return Err(fail("unknown bcrypt version"));
    }
    let cost_ok = cost
        .parse::<u32>()
        .is_ok_and(|c| (4..=MAX_BCRYPT_COST).contains(&c));
    if !cost_ok {
        return Err(fail(&format!("cost must be 4 to {MAX_BCRYPT_COST}")));
    }
    let alphabet_ok = body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
    if body.len() != 53 || !alphabet_ok {
        return Err(fail(
            "the salt and hash are not 53 bcrypt base64 characters",
        ));
    }
    Ok(DjangoHash::BcryptSha256 {
        bcrypt: rest.to_owned(),
    })
}

/// Vectors asserted by Django's own test suite (`tests/auth_tests/test_hashers.py`) and
/// made by a real Django (`scripts/django_fixtures`), each checked there with
/// `check_password` before it was written.
#[cfg(test)]
const VECTORS: &str = include_str!("../../tests/fixtures/django/hasher_vectors.json");

#[cfg(test)]
#[derive(serde::Deserialize)]
pub(crate) struct Vector {
    pub algorithm: String,
    pub password: String,
    pub encoded: String,
    pub source: String,
    /// At a production work factor (seconds in a test build).
    pub slow: bool,
}

#[cfg(test)]
pub(crate) fn vectors() -> Vec<Vector> {
    serde_json::from_str(VECTORS).expect("the vectors are JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_published_and_generated_vector_verifies_and_a_wrong_password_does_not() {
        let vectors = vectors();
        for algorithm in ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256"] {
            assert!(
                vectors.iter().any(|v| v.algorithm == algorithm),
                "a vector for {algorithm}"
            );
        }
        assert!(vectors.iter().any(|v| v.source == "django-tests"));
        for vector in &vectors {
            let hash = DjangoHash::parse(&vector.encoded)
                .unwrap_or_else(|err| panic!("{} ({}): {err}", vector.encoded, vector.source));
            assert!(
                hash.verify(&vector.password),
                "{} verifies {:?} ({})",
                vector.encoded,
                vector.password,
                vector.source
            );
            assert!(
                !hash.verify(&format!("{}x", vector.password)),
                "{} refuses a wrong password",
                vector.encoded
            );
        }
    }

    #[test]
    fn a_changed_hash_byte_no_longer_verifies() {
        let vector = vectors()
            .into_iter()
            .find(|v| v.algorithm == "pbkdf2_sha256")
            .expect("a pbkdf2_sha256 vector");
        let (head, tail) = vector.encoded.rsplit_once('$').unwrap();
        let mut bytes = STANDARD.decode(tail).unwrap();
        bytes[0] ^= 1;
        let tampered = format!("{head}${}", STANDARD.encode(bytes));
        let hash = DjangoHash::parse(&tampered).unwrap();
        assert!(!hash.verify(&vector.password));
    }

    #[test]
    fn malformed_and_unknown_hashes_say_what_is_wrong() {
        let cases = [
            (
                "md5$salt$abc",
                "unsupported password hash algorithm \"md5\"",
            ),
            ("plaintext", "no algorithm"),
            ("pbkdf2_sha256$abc$salt$AAAA", "iterations"),
            ("pbkdf2_sha256$99999999999$salt$AAAA", "iterations"),
            ("pbkdf2_sha256$1000$salt", "expected"),
            ("pbkdf2_sha256$1000$salt$not-base64!", "bytes of base64"),
            ("pbkdf2_sha1$1000$salt$AAAA", "20 bytes"),
            (
                "argon2$argon2id$v=19$m=x,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
                "argon2",
            ),
            ("bcrypt_sha256$$2b$12$short", "53 bcrypt"),
            (
                "bcrypt_sha256$$2b$31$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0",
                "cost",
            ),
        ];
        for (encoded, expected) in cases {
            let err = DjangoHash::parse(encoded).expect_err(encoded);
            assert!(
                err.to_string().contains(expected),
                "{encoded}: {err} should mention {expected}"
            );
        }
    }

    #[test]
    fn debug_shows_the_algorithm_only() {
        let hash = DjangoHash::parse(
            "pbkdf2_sha256$1000$pepper$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .unwrap();
        assert_eq!(format!("{hash:?}"), "DjangoHash(pbkdf2_sha256, <redacted>)");
    }
}
