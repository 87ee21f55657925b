//! The mail settings: `EMAIL_URL` (the backend, [`super::backend`]), `DEFAULT_FROM_EMAIL` (the
//! sender, Django's setting and default) and `SITE_NAME` (what the messages call the site).

use lettre::message::Mailbox;
use service_kit::env::{self, ConfigError};

use super::backend::EmailUrl;

#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `EMAIL_URL`, default `console:`.
    pub url: EmailUrl,
    /// `DEFAULT_FROM_EMAIL`, default `webmaster@localhost`; `Name <address>` is accepted.
    pub from: Mailbox,
    /// `SITE_NAME`, default `example.com` (Django's first `Site`).
    pub site_name: String,
}

impl MailSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let raw = env::string_or("EMAIL_URL", "console:");
        let url = raw.parse().map_err(|reason| {
            // The value may carry a password: the error shows only what parsed of it.
            let shown = match raw.rsplit_once('@') {
                Some((_, host)) => format!("…@{host}"),
                None => raw.clone(),
            };
            ConfigError::new("EMAIL_URL", shown, reason)
        })?;
        Ok(Self {
            url,
            from: env::parse_or("DEFAULT_FROM_EMAIL", "webmaster@localhost")?,
            site_name: env::string_or("SITE_NAME", "example.com"),
        })
    }

    /// For tests: the console backend.
    pub fn for_tests() -> Self {
        Self {
            url: EmailUrl::Console,
            from: "webmaster@localhost".parse().expect("a valid address"),
            site_name: "example.com".to_owned(),
        }
    }
}
