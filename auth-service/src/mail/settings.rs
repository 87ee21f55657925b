//! The mail settings: `EMAIL_URL` (the backend, [`super::backend`]), `DEFAULT_FROM_EMAIL` (the
//! sender, Django's setting and default), `SITE_NAME` (what the messages call the site) and
//! `EMAIL_CA_FILE` (a private CA for the mail server's certificate).

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
    /// `EMAIL_CA_FILE`, default none: a CA (PEM) trusted for the mail server's certificate
    /// besides Mozilla's roots, for a server whose certificate a private CA signed.
    pub ca_pem: Option<Vec<u8>>,
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
            ca_pem: match env::string_or("EMAIL_CA_FILE", "") {
                path if path.is_empty() => None,
                path => Some(
                    std::fs::read(&path)
                        .map_err(|err| ConfigError::new("EMAIL_CA_FILE", path.clone(), err))?,
                ),
            },
        })
    }

    /// For tests: the console backend.
    pub fn for_tests() -> Self {
        Self {
            url: EmailUrl::Console,
            from: "webmaster@localhost".parse().expect("a valid address"),
            site_name: "example.com".to_owned(),
            ca_pem: None,
        }
    }
}
