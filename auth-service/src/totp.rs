//! TOTP (RFC 6238) as authenticator apps compute it: HMAC-SHA1 (RFC 4226's HOTP) over the
//! number of 30-second steps since the epoch, 6 digits. Owns the shared secret and the code of a
//! step; which steps are accepted, and how often, is `service::second_factor`'s. Public so that
//! tests compute codes as an app would.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The length of a step, in seconds.
pub const STEP_SECONDS: i64 = 30;
/// The digits of a code.
pub const DIGITS: u32 = 6;
/// RFC 4226 recommends 160 bits, the length of SHA-1's output.
const SECRET_BYTES: usize = 20;

/// A TOTP shared secret, as base32 without padding (RFC 4648), the form apps are given. Unlike
/// a password it cannot be kept as a digest: both sides compute codes from it. `Debug` is
/// redacted.
#[derive(Debug, Clone)]
pub struct TotpSecret(SecretString);

impl TotpSecret {
    /// 160 bits from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        Self(BASE32_NOPAD.encode(&bytes).into())
    }

    /// A secret in base32 (as stored or shown), if it is one.
    pub fn from_base32(text: &str) -> Option<Self> {
        BASE32_NOPAD.decode(text.as_bytes()).ok()?;
        Some(Self(text.into()))
    }

    pub fn base32(&self) -> &str {
        self.0.expose_secret()
    }

    /// The code of `step`, zero-padded to [`DIGITS`].
    pub fn code_at_step(&self, step: i64) -> String {
        let key = BASE32_NOPAD
            .decode(self.base32().as_bytes())
            .expect("checked when the secret was made");
        let width = DIGITS as usize;
        format!("{:0width$}", hotp(&key, step, DIGITS))
    }

    /// The code an app shows at `unix_seconds`.
    pub fn code_at(&self, unix_seconds: i64) -> String {
        self.code_at_step(step_of(unix_seconds))
    }

    /// Whether `code` is the code of `step`, compared without an early exit.
    pub fn matches(&self, step: i64, code: &str) -> bool {
        self.code_at_step(step)
            .as_bytes()
            .ct_eq(code.as_bytes())
            .into()
    }
}

/// The step `unix_seconds` falls in.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// RFC 4226's HOTP: HMAC-SHA1 of the counter, dynamically truncated to `digits` digits.
fn hotp(key: &[u8], counter: i64, digits: u32) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let mut word = [0u8; 4];
    word.copy_from_slice(&hash[offset..offset + 4]);
    (u32::from_be_bytes(word) & 0x7fff_ffff) % 10u32.pow(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, Appendix B, the SHA-1 rows: 8 digits of the ASCII secret "12345678901234567890".
    #[test]
    fn the_rfc_6238_test_vectors() {
        let key = b"12345678901234567890";
        for (time, code) in [
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(hotp(key, step_of(time), 8), code, "T = {time}");
        }
    }

    #[test]
    fn a_secret_gives_six_digits_and_round_trips_through_base32() {
        let secret =
            TotpSecret::from_base32(&BASE32_NOPAD.encode(b"12345678901234567890")).expect("base32");
        // The 6-digit truncation of the vector at T = 59 (94287082).
        assert_eq!(secret.code_at(59), "287082");
        assert!(secret.matches(1, "287082"));
        assert!(!secret.matches(2, "287082"));
        let generated = TotpSecret::generate();
        assert_eq!(generated.base32().len(), 32);
        assert!(TotpSecret::from_base32(generated.base32()).is_some());
        assert!(TotpSecret::from_base32("not base32!").is_none());
    }
}
