//! Reading typed settings from the environment; a bad value is a [`ConfigError`] naming the
//! variable, reported before any socket opens.
//!
//! Each setting's name and default are written once, where a program's `from_env` reads it.
//! [`settings_read_by`] runs that reading with the environment set aside and lists what it
//! read: the list each binary's `--help` shows, and that a test holds to docs/API.md.

use std::{cell::RefCell, fmt::Display, str::FromStr};

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

/// A setting as a program reads it: its variable and its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    pub default: String,
}

thread_local! {
    /// While [`settings_read_by`] runs on this thread: what has been read.
    static LISTING: RefCell<Option<Vec<Setting>>> = const { RefCell::new(None) };
}

/// The settings `read` reads, in order, each once. `read` runs with the environment set aside
/// (every setting at its default, so it cannot stop at a bad value); its result is dropped.
pub fn settings_read_by<T>(read: impl FnOnce() -> T) -> Vec<Setting> {
    let outer = LISTING.with(|listing| listing.borrow_mut().replace(Vec::new()));
    drop(read());
    let read = LISTING.with(|listing| std::mem::replace(&mut *listing.borrow_mut(), outer));
    read.unwrap_or_default()
}

/// Notes the setting if [`settings_read_by`] is listing; whether it is.
fn listed(name: &'static str, default: &str) -> bool {
    LISTING.with(|listing| match listing.borrow_mut().as_mut() {
        Some(read) => {
            if !read.iter().any(|setting| setting.name == name) {
                read.push(Setting {
                    name,
                    default: default.to_owned(),
                });
            }
            true
        }
        None => false,
    })
}

/// The variable's value, or `default` when it is unset or empty.
pub fn string_or(name: &'static str, default: &str) -> String {
    if listed(name, default) {
        return default.to_owned();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What a program's `from_env` does: two settings, one read twice. `PATH` is set, and is no
    /// port number.
    fn read() -> Result<(u16, bool, u16), ConfigError> {
        Ok((
            parse_or("PATH", "8000")?,
            switch_or("ENV_TEST_SWITCH", false)?,
            parse_or("PATH", "8000")?,
        ))
    }

    #[test]
    fn lists_each_setting_once_with_its_default_whatever_the_environment() {
        assert!(read().is_err(), "read normally, the bad value stops it");
        let listed = settings_read_by(read);
        let names: Vec<_> = listed
            .iter()
            .map(|s| (s.name, s.default.as_str()))
            .collect();
        assert_eq!(names, [("PATH", "8000"), ("ENV_TEST_SWITCH", "off")]);
        assert!(read().is_err(), "listing leaves normal reading as it was");
    }
}
