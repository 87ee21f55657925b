//! Field errors: what a request got wrong, field by field, in the words clients show to people.
//! They travel as `google.rpc.BadRequest` field violations on an INVALID_ARGUMENT status.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// DRF's message for a missing field.
pub const REQUIRED: &str = "This field is required.";
/// DRF's message for an empty string where one is needed.
pub const BLANK: &str = "This field may not be blank.";

/// DRF's message for a string with a NUL character in it (`ProhibitNullCharactersValidator`,
/// on every `CharField`). PostgreSQL cannot store one in text at all, and SQLite would store a
/// name that most tools cut short at it.
pub const NULL_CHARACTERS: &str = "Null characters are not allowed.";

/// `Err` with [`NULL_CHARACTERS`] when `text` has a NUL in it. Parsers of text fields check this
/// first: the value is then refused for that alone.
pub fn no_null_characters(text: &str) -> Result<(), Messages> {
    if text.contains('\0') {
        Err(vec![NULL_CHARACTERS.to_owned()])
    } else {
        Ok(())
    }
}

/// DRF's message for a string over its limit.
pub fn too_long(max_chars: usize) -> String {
    format!("Ensure this field has no more than {max_chars} characters.")
}

/// What one field got wrong; a parser returns these and its caller names the field.
pub type Messages = Vec<String>;

/// `Ok` for a present, non-blank string without NUL characters (trimmed, as DRF's `CharField`
/// does).
pub fn required_text(value: Option<String>) -> Result<String, Messages> {
    match value {
        None => Err(vec![REQUIRED.to_owned()]),
        Some(text) if text.trim().is_empty() => Err(vec![BLANK.to_owned()]),
        Some(text) => {
            no_null_characters(&text)?;
            Ok(text.trim().to_owned())
        }
    }
}

/// `Ok` for an optional string without NUL characters, trimmed (DRF's
/// `CharField(allow_blank=True)`).
pub fn optional_text(value: &str) -> Result<String, Messages> {
    no_null_characters(value)?;
    Ok(value.trim().to_owned())
}

/// Every violation found in one request, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<(String, String)>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// One error for one field.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push((field.into(), message.into()));
    }

    /// Keeps the value when `result` is Ok, records its messages under `field` otherwise.
    pub fn check<T>(&mut self, field: &str, result: Result<T, Messages>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(messages) => {
                for message in messages {
                    self.add(field, message);
                }
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(f, m)| (f.as_str(), m.as_str()))
    }

    /// Reads the violations back out of a status (what a client of the service does).
    pub fn from_status(status: &Status) -> Option<Self> {
        let details = status.get_error_details();
        let bad_request = details.bad_request()?;
        Some(Self(
            bad_request
                .field_violations
                .iter()
                .map(|v| (v.field.clone(), v.description.clone()))
                .collect(),
        ))
    }
}

impl From<FieldErrors> for Status {
    fn from(errors: FieldErrors) -> Self {
        let mut details = ErrorDetails::new();
        for (field, message) in errors.0 {
            details.add_bad_request_violation(field, message);
        }
        Status::with_error_details(Code::InvalidArgument, "invalid request", details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_a_nul_is_refused_for_that_alone() {
        let nul = || vec![NULL_CHARACTERS.to_owned()];
        assert_eq!(required_text(Some("a\0b".to_owned())), Err(nul()));
        assert_eq!(required_text(Some("\0".to_owned())), Err(nul()));
        assert_eq!(optional_text(" x\0 "), Err(nul()));
        assert_eq!(required_text(Some(" ok ".to_owned())).as_deref(), Ok("ok"));
        assert_eq!(optional_text(" ").as_deref(), Ok(""));
    }
}
