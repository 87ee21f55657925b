//! Usernames, emails and personal names, with Django's rules and messages.

use service_kit::validation::{BLANK, Messages, no_null_characters, too_long};

const USERNAME_MAX_CHARS: usize = 150;
const EMAIL_MAX_CHARS: usize = 254;
const NAME_MAX_CHARS: usize = 150;

/// At most 150 letters, digits and `@.+-_` (Django's `UnicodeUsernameValidator`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, Messages> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(vec![BLANK.to_owned()]);
        }
        no_null_characters(value)?;
        let mut messages = Vec::new();
        if value.chars().count() > USERNAME_MAX_CHARS {
            messages.push(too_long(USERNAME_MAX_CHARS));
        }
        if !value
            .chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
        {
            messages.push(
                "Enter a valid username. This value may contain only letters, numbers, and \
                 @/./+/-/_ characters."
                    .to_owned(),
            );
        }
        if messages.is_empty() {
            Ok(Self(value.to_owned()))
        } else {
            Err(messages)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What uniqueness and look-ups compare: the name ignoring case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// An address of the form `local@domain.tld` (or `@localhost`), at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Messages> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(vec![BLANK.to_owned()]);
        }
        no_null_characters(value)?;
        if value.chars().count() > EMAIL_MAX_CHARS {
            return Err(vec![too_long(EMAIL_MAX_CHARS)]);
        }
        if !looks_like_email(value) {
            return Err(vec!["Enter a valid email address.".to_owned()]);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What uniqueness and look-ups compare: the address ignoring case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// Django's `EmailValidator`, in its essentials: a local part without spaces or a second `@`,
/// and a domain of dot-separated labels with a top-level part, or `localhost`.
fn looks_like_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let domain_ok = domain.eq_ignore_ascii_case("localhost")
        || (domain.contains('.') && domain.split('.').all(label_ok));
    local_ok && domain_ok
}

/// A first or last name: optional, trimmed, at most 150 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, Messages> {
        let value = raw.trim();
        no_null_characters(value)?;
        if value.chars().count() > NAME_MAX_CHARS {
            return Err(vec![too_long(NAME_MAX_CHARS)]);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_django() {
        assert_eq!(
            Username::parse(" alice.b+1@x_y-z ").unwrap().as_str(),
            "alice.b+1@x_y-z"
        );
        assert_eq!(Username::parse("Zoë").unwrap().key(), "zoë");
        assert_eq!(Username::parse("  ").unwrap_err(), vec![BLANK]);
        assert!(Username::parse("bad name").unwrap_err()[0].starts_with("Enter a valid username."));
        assert_eq!(
            Username::parse(&"a".repeat(151)).unwrap_err(),
            vec!["Ensure this field has no more than 150 characters."]
        );
    }

    #[test]
    fn emails_need_a_local_part_and_a_domain() {
        for good in [
            "a@example.com",
            "John.Doe+x@mail.example.org",
            "root@localhost",
        ] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "a",
            "a@",
            "@example.com",
            "a@example",
            "a b@example.com",
            "a@-x.com",
            "a@@b.com",
        ] {
            assert_eq!(
                Email::parse(bad).unwrap_err(),
                vec!["Enter a valid email address."],
                "{bad}"
            );
        }
        assert_eq!(
            Email::parse("A@Example.COM").unwrap().key(),
            "a@example.com"
        );
    }

    #[test]
    fn nul_characters_are_refused_with_drf_message() {
        let nul = vec![service_kit::validation::NULL_CHARACTERS.to_owned()];
        assert_eq!(Username::parse("al\0ice").unwrap_err(), nul);
        assert_eq!(Email::parse("a\0@example.com").unwrap_err(), nul);
        assert_eq!(PersonName::parse("Jo\0hn").unwrap_err(), nul);
    }

    #[test]
    fn names_may_be_blank_but_not_long() {
        assert_eq!(PersonName::parse("  ").unwrap().as_str(), "");
        assert!(PersonName::parse(&"x".repeat(151)).is_err());
    }
}
