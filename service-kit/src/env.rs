//! Reading typed settings from the environment; a bad value is a [`ConfigError`] naming the
//! variable, reported before any socket opens.

use std::{fmt::Display, str::FromStr};

/// A setting that is present but unusable.
#[derive(Debug, thiserror::Error)]
#[error("invalid {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(name: &'static str, value: impl Into<String>, reason: impl Display) -> Self {
        Self {
            name,
            value: value.into(),
            reason: reason.to_string(),
        }
    }
}

/// The variable's value, or `default` when it is unset or empty.
pub fn string_or(name: &'static str, default: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => default.to_owned(),
    }
}

/// The variable parsed as `T`, or `default` (also parsed, so defaults read like the docs) when
/// unset.
pub fn parse_or<T>(name: &'static str, default: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    let value = string_or(name, default);
    value
        .trim()
        .parse()
        .map_err(|err| ConfigError::new(name, value.clone(), err))
}

/// A whole number above zero (a count, or a duration in the unit its name gives).
pub fn positive_or(name: &'static str, default: &str) -> Result<u64, ConfigError> {
    match parse_or(name, default)? {
        0 => Err(ConfigError::new(name, "0", "must be positive")),
        value => Ok(value),
    }
}

/// An `on`/`off` switch (also `true`/`false`, `1`/`0`, `yes`/`no`).
pub fn switch_or(name: &'static str, default: bool) -> Result<bool, ConfigError> {
    let value = string_or(name, if default { "on" } else { "off" });
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::new(name, value, "expected on or off")),
    }
}

/// A positive number of milliseconds (`default` is in milliseconds too).
pub fn millis_or(name: &'static str, default: &str) -> Result<std::time::Duration, ConfigError> {
    match parse_or::<u64>(name, default)? {
        0 => Err(ConfigError::new(name, "0", "must be at least 1")),
        ms => Ok(std::time::Duration::from_millis(ms)),
    }
}
