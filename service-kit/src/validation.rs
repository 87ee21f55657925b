//! Field errors: what a request got wrong, field by field, in the words clients show to people.
//! They travel as `google.rpc.BadRequest` field violations on an INVALID_ARGUMENT status.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// DRF's message for a missing field.
pub const REQUIRED: &str = "This field is required.";
/// DRF's message for an empty string where one is needed.
pub const BLANK: &str = "This field may not be blank.";

/// DRF's message for a string over its limit.
pub fn too_long(max_chars: usize) -> String {
    format!("Ensure this field has no more than {max_chars} characters.")
}

/// What one field got wrong; a parser returns these and its caller names the field.
pub type Messages = Vec<String>;

/// `Ok` for a present, non-blank string (trimmed, as DRF's `CharField` does).
pub fn required_text(value: Option<String>) -> Result<String, Messages> {
    match value {
        None => Err(vec![REQUIRED.to_owned()]),
        Some(text) if text.trim().is_empty() => Err(vec![BLANK.to_owned()]),
        Some(text) => Ok(text.trim().to_owned()),
    }
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
