//! What a user presents as a second factor: a TOTP code, or one of the recovery codes issued at
//! confirmation (generated here, of which only a digest is stored).

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::totp::DIGITS;

/// How many recovery codes a confirmation issues.
pub const RECOVERY_CODES: usize = 10;
/// The characters of a recovery code: RFC 4648's base32 alphabet, lower case (no 0/1/8/9,
/// which read as letters).
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// 10 characters, 50 bits; shown as two groups of five.
const RECOVERY_LENGTH: usize = 10;

/// A code as presented, told apart by its shape: six digits are a TOTP code, anything else is
/// read as a recovery code.
#[derive(Debug)]
pub enum FactorCode {
    Totp(SecretString),
    Recovery(RecoveryCode),
}

impl FactorCode {
    /// `raw`, if it can be either kind of code; anything else cannot match.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.len() == DIGITS as usize && raw.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Self::Totp(raw.into()));
        }
        RecoveryCode::parse(raw).map(Self::Recovery)
    }
}

/// A single-use recovery code. Typed with or without its dash, in either case.
#[derive(Debug)]
pub struct RecoveryCode(SecretString);

impl RecoveryCode {
    pub fn generate() -> Self {
        let mut bytes = [0u8; RECOVERY_LENGTH];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        // 256 is a multiple of 32: every character is equally likely.
        let code: String = bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
            .collect();
        Self(code.into())
    }

    fn parse(raw: &str) -> Option<Self> {
        let code: String = raw
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let well_formed =
            code.len() == RECOVERY_LENGTH && code.bytes().all(|b| ALPHABET.contains(&b));
        well_formed.then(|| Self(code.into()))
    }

    /// As shown to the user: `abcde-fghij`.
    pub fn shown(&self) -> String {
        let (first, second) = self.0.expose_secret().split_at(RECOVERY_LENGTH / 2);
        format!("{first}-{second}")
    }

    /// What is stored in its place: hex SHA-256. Fifty random bits need no slow hash here: a
    /// guess is checked only online, under the login lockout.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.0.expose_secret().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovery_code_reads_back_however_it_is_typed() {
        let code = RecoveryCode::generate();
        let shown = code.shown();
        assert_eq!(shown.len(), 11);
        for typed in [shown.clone(), shown.replace('-', ""), shown.to_uppercase()] {
            let Some(FactorCode::Recovery(read)) = FactorCode::parse(&typed) else {
                panic!("{typed} is a recovery code");
            };
            assert_eq!(read.digest(), code.digest());
        }
    }

    #[test]
    fn six_digits_are_a_totp_code_and_nonsense_is_neither() {
        assert!(matches!(
            FactorCode::parse(" 123456 "),
            Some(FactorCode::Totp(_))
        ));
        for bad in ["", "12345", "1234567", "abcde-fghi1", "abcdefghijk"] {
            assert!(FactorCode::parse(bad).is_none(), "{bad}");
        }
    }
}
