//! Passwords: the rules of API.md, and types for a password and its stored hash that never
//! print their contents.

use secrecy::{ExposeSecret, SecretString};
use service_kit::validation::{BLANK, Messages, too_long};

const MIN_CHARS: usize = 8;
const MAX_CHARS: usize = 1024;

/// A password that met the rules (or, from [`Password::unchecked`], one only to be verified).
/// A `secrecy` string: its `Debug` is redacted, so it can never reach a log, and its memory is
/// wiped when it is dropped.
#[derive(Clone, Debug)]
pub struct Password(SecretString);

impl Password {
    /// Checks a new password: 8 to 1024 characters, at least one letter and one digit. Every
    /// broken rule is reported, as Django's validators do.
    pub fn parse(raw: &str) -> Result<Self, Messages> {
        if raw.is_empty() {
            return Err(vec![BLANK.to_owned()]);
        }
        let chars = raw.chars().count();
        let mut messages = Vec::new();
        if chars > MAX_CHARS {
            messages.push(too_long(MAX_CHARS));
        }
        if chars < MIN_CHARS {
            messages.push("Password must be at least 8 characters long.".to_owned());
        }
        if !raw.chars().any(|c| c.is_numeric()) {
            messages.push("Password must contain at least one numeral.".to_owned());
        }
        if !raw.chars().any(char::is_alphabetic) {
            messages.push("Password must contain at least one letter.".to_owned());
        }
        if messages.is_empty() {
            Ok(Self(raw.into()))
        } else {
            Err(messages)
        }
    }

    /// A presented password (at login), which is verified, not judged: rules may have changed
    /// since it was set. Only emptiness and the length cap (hashing cost) are checked.
    pub fn unchecked(raw: &str) -> Result<Self, Messages> {
        if raw.is_empty() {
            return Err(vec![BLANK.to_owned()]);
        }
        if raw.chars().count() > MAX_CHARS {
            return Err(vec![too_long(MAX_CHARS)]);
        }
        Ok(Self(raw.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// A password as stored: our argon2id PHC string, a hash imported from Django, or an unusable
/// marker. As secret as the password it came from, so it is a `secrecy` string too, and every
/// record that carries one may derive its `Debug`.
#[derive(Clone, Debug)]
pub struct HashedPassword(SecretString);

impl HashedPassword {
    pub fn new(stored: String) -> Self {
        Self(stored.into())
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The stored text, to bind to a statement.
    pub fn into_exposed(self) -> String {
        self.expose().to_owned()
    }
}

impl PartialEq for HashedPassword {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for HashedPassword {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_every_rule_with_its_message() {
        assert!(Password::parse("Password123").is_ok());
        assert_eq!(Password::parse("").unwrap_err(), vec![BLANK]);
        assert_eq!(
            Password::parse("abc").unwrap_err(),
            vec![
                "Password must be at least 8 characters long.",
                "Password must contain at least one numeral."
            ]
        );
        assert_eq!(
            Password::parse("12345678").unwrap_err(),
            vec!["Password must contain at least one letter."]
        );
        assert_eq!(
            Password::parse(&format!("a1{}", "x".repeat(1023))).unwrap_err(),
            vec!["Ensure this field has no more than 1024 characters."]
        );
    }

    #[test]
    fn never_prints_itself() {
        let password = Password::parse("Secret123").unwrap();
        assert!(!format!("{password:?}").contains("Secret123"));
        let hash = HashedPassword::new("pbkdf2_sha256$1$salt$output".to_owned());
        assert!(!format!("{hash:?}").contains("output"));
    }
}
