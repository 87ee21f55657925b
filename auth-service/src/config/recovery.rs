//! The settings of password reset and e-mail verification, under the names Django, allauth and
//! dj-rest-auth users know where there is one.

use std::{str::FromStr, time::Duration};

use service_kit::env::{self, ConfigError};

/// allauth's `ACCOUNT_EMAIL_VERIFICATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// No verification message is sent, and nothing waits for one.
    None,
    /// A verification message on sign-up and on an e-mail change; login works either way.
    Optional,
    /// As `Optional`, and a login is refused until the address is verified.
    Mandatory,
}

impl FromStr for Verification {
    type Err = &'static str;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "optional" => Ok(Self::Optional),
            "mandatory" => Ok(Self::Mandatory),
            _ => Err("expected none, optional or mandatory"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RecoverySettings {
    /// `PASSWORD_RESET_URL`, default `http://localhost:8000/password/reset/confirm/{uid}/{token}/`:
    /// the front-end page a reset message links to, `{uid}` and `{token}` filled in.
    pub reset_url: String,
    /// `PASSWORD_RESET_TIMEOUT_SECONDS`, default 259200 (Django's three days).
    pub reset_timeout: Duration,
    /// `ACCOUNT_EMAIL_VERIFICATION`, default `none`.
    pub verification: Verification,
    /// `EMAIL_VERIFICATION_URL`, default
    /// `http://localhost:8000/registration/account-confirm-email/{key}/`: the page a
    /// verification message links to, `{key}` filled in.
    pub verification_url: String,
    /// `ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS`, default 3 (allauth's).
    pub verification_expiry: Duration,
}

const DAY: Duration = Duration::from_secs(86_400);

impl RecoverySettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let reset_url = env::string_or(
            "PASSWORD_RESET_URL",
            "http://localhost:8000/password/reset/confirm/{uid}/{token}/",
        );
        for placeholder in ["{uid}", "{token}"] {
            if !reset_url.contains(placeholder) {
                return Err(ConfigError::new(
                    "PASSWORD_RESET_URL",
                    reset_url,
                    format!("must contain {placeholder}"),
                ));
            }
        }
        let verification_url = env::string_or(
            "EMAIL_VERIFICATION_URL",
            "http://localhost:8000/registration/account-confirm-email/{key}/",
        );
        if !verification_url.contains("{key}") {
            return Err(ConfigError::new(
                "EMAIL_VERIFICATION_URL",
                verification_url,
                "must contain {key}",
            ));
        }
        Ok(Self {
            reset_url,
            reset_timeout: Duration::from_secs(env::positive_or(
                "PASSWORD_RESET_TIMEOUT_SECONDS",
                "259200",
            )?),
            verification: env::parse_or("ACCOUNT_EMAIL_VERIFICATION", "none")?,
            verification_url,
            verification_expiry: DAY
                * u32::try_from(env::positive_or(
                    "ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS",
                    "3",
                )?)
                .unwrap_or(u32::MAX),
        })
    }

    /// The defaults, for tests.
    pub fn for_tests() -> Self {
        Self {
            reset_url: "http://localhost:8000/password/reset/confirm/{uid}/{token}/".to_owned(),
            reset_timeout: 3 * DAY,
            verification: Verification::None,
            verification_url: "http://localhost:8000/registration/account-confirm-email/{key}/"
                .to_owned(),
            verification_expiry: 3 * DAY,
        }
    }

    /// The reset link for user `uid` (as encoded) and `token`.
    pub fn reset_link(&self, uid: &str, token: &str) -> String {
        self.reset_url
            .replace("{uid}", uid)
            .replace("{token}", token)
    }

    /// The verification link for `key`.
    pub fn verification_link(&self, key: &str) -> String {
        self.verification_url.replace("{key}", key)
    }
}
