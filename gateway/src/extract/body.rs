//! The request body as DRF's parsers see it: JSON or form-encoded into one map of fields, with
//! DRF's 415, 400 (malformed JSON, or a body that cannot be read) and (over [`BODY_LIMIT`])
//! 413; and the field readers that coerce a value the way DRF's serializer fields do,
//! recording DRF's messages for values they cannot use.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
};
use http::{StatusCode, header};
use serde_json::{Map, Value};
use service_kit::validation::{FieldErrors, REQUIRED};

use crate::{
    error::{ApiError, NON_FIELD_ERRORS},
    openapi::Field,
};

/// The largest body the gateway reads.
pub const BODY_LIMIT: usize = 1024 * 1024;

const NULL: &str = "This field may not be null.";
const NOT_A_STRING: &str = "Not a valid string.";
const NOT_AN_INTEGER: &str = "A valid integer is required.";
const NOT_A_NUMBER: &str = "A valid number is required.";
const NOT_A_BOOLEAN: &str = "Must be a valid boolean.";

/// The fields of a request body. An empty body, or one without a `Content-Type`, has none (as in
/// DRF, which parses nothing then).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        // `Bytes` honours the router's `DefaultBodyLimit`, and says 413 when it is passed; 400
        // when the client's body cannot be read (the connection's fault, not the server's).
        let body =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                    StatusCode::BAD_REQUEST => {
                        tracing::debug!(reason = %rejection.body_text(), "unreadable body");
                        ApiError::MalformedRequest
                    }
                    _ => ApiError::Internal(format!(
                        "cannot read the body: {}",
                        rejection.body_text()
                    )),
                })?;
        Self::parse(content_type.as_deref(), &body)
    }
}

impl Fields {
    /// Parses `body` by its media type, as DRF's JSON and form parsers do.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let Some(content_type) = content_type.filter(|_| !body.is_empty()) else {
            return Ok(Self::default());
        };
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            "application/json" => match serde_json::from_slice(body) {
                Ok(Value::Object(fields)) => Ok(Self(fields)),
                // DRF's serializers refuse anything but an object this way.
                Ok(other) => Err(ApiError::field(
                    NON_FIELD_ERRORS,
                    format!(
                        "Invalid data. Expected a dictionary, but got {}.",
                        python_type_name(&other)
                    ),
                )),
                Err(err) => Err(ApiError::MalformedJson(err.to_string())),
            },
            "application/x-www-form-urlencoded" => Ok(Self(
                // A repeated name keeps its last value, as Django's `QueryDict.get` does.
                form_urlencoded::parse(body)
                    .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
                    .collect(),
            )),
            _ => Err(ApiError::UnsupportedMediaType(content_type.to_owned())),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Records DRF's "This field is required." for each field `table` requires (the table the
    /// route's document is written from) that the body lacks.
    pub fn require(&self, table: &[Field], errors: &mut FieldErrors) {
        for field in table
            .iter()
            .filter(|f| f.required && !self.contains(f.name))
        {
            errors.add(field.name, REQUIRED);
        }
    }

    /// A text field (DRF's `CharField`: strings, and numbers as their text). Absent is `None`.
    pub fn text(&self, name: &str, errors: &mut FieldErrors) -> Option<String> {
        match self.0.get(name)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            Value::Null => reject(errors, name, NULL),
            _ => reject(errors, name, NOT_A_STRING),
        }
    }

    /// [`Self::text`] that must be present.
    pub fn required_text(&self, name: &str, errors: &mut FieldErrors) -> Option<String> {
        if !self.contains(name) {
            return reject(errors, name, REQUIRED);
        }
        self.text(name, errors)
    }

    /// An integer field (DRF's `IntegerField`: numbers and numeric strings, `5.0` included).
    pub fn integer(&self, name: &str, errors: &mut FieldErrors) -> Option<i64> {
        let text = match self.0.get(name)? {
            Value::String(text) => text.trim().to_owned(),
            Value::Number(number) => number.to_string(),
            Value::Null => return reject(errors, name, NULL),
            _ => return reject(errors, name, NOT_AN_INTEGER),
        };
        // DRF strips a decimal point followed by zeros only.
        let whole = match text.split_once('.') {
            Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
            _ => text.as_str(),
        };
        whole
            .parse()
            .ok()
            .or_else(|| reject(errors, name, NOT_AN_INTEGER))
    }

    /// A decimal field, kept as its exact text for the service to check (DRF's `DecimalField`
    /// takes numbers and strings).
    pub fn decimal(&self, name: &str, errors: &mut FieldErrors) -> Option<String> {
        match self.0.get(name)? {
            Value::String(text) => Some(text.trim().to_owned()),
            Value::Number(number) => Some(number.to_string()),
            Value::Null => reject(errors, name, NULL),
            _ => reject(errors, name, NOT_A_NUMBER),
        }
    }

    /// A boolean field (DRF's `BooleanField` and the spellings it accepts).
    pub fn boolean(&self, name: &str, errors: &mut FieldErrors) -> Option<bool> {
        let text = match self.0.get(name)? {
            Value::Bool(flag) => return Some(*flag),
            Value::String(text) => text.as_str(),
            Value::Number(number) if number.as_u64() == Some(1) => "1",
            Value::Number(number) if number.as_u64() == Some(0) => "0",
            Value::Null => return reject(errors, name, NULL),
            _ => return reject(errors, name, NOT_A_BOOLEAN),
        };
        match text {
            "t" | "T" | "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on"
            | "On" | "ON" | "1" => Some(true),
            "f" | "F" | "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off"
            | "Off" | "OFF" | "0" => Some(false),
            _ => reject(errors, name, NOT_A_BOOLEAN),
        }
    }
}

/// Records `message` for `field` and yields no value.
fn reject<T>(errors: &mut FieldErrors, field: &str, message: &str) -> Option<T> {
    errors.add(field, message);
    None
}

/// What Python calls the type of a parsed JSON value (DRF's message names it).
fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_i64() || number.is_u64() => "int",
        Value::Number(_) => "float",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(body: &str) -> Fields {
        Fields::parse(Some("application/json"), body.as_bytes()).unwrap()
    }

    #[test]
    fn keeps_a_number_exact() {
        let mut errors = FieldErrors::new();
        let fields = json(r#"{"price": 19.99, "big": 12345678901234567890.10}"#);
        assert_eq!(
            fields.decimal("price", &mut errors).as_deref(),
            Some("19.99")
        );
        assert_eq!(
            fields.decimal("big", &mut errors).as_deref(),
            Some("12345678901234567890.10")
        );
        assert!(errors.is_empty());
    }

    #[test]
    fn reads_integers_as_drf_does() {
        let mut errors = FieldErrors::new();
        let fields = json(r#"{"a": 5, "b": "7", "c": 3.0, "d": 3.5, "e": "x", "f": true}"#);
        assert_eq!(fields.integer("a", &mut errors), Some(5));
        assert_eq!(fields.integer("b", &mut errors), Some(7));
        assert_eq!(fields.integer("c", &mut errors), Some(3));
        assert!(errors.is_empty());
        for name in ["d", "e", "f"] {
            assert_eq!(fields.integer(name, &mut errors), None);
        }
        assert_eq!(errors.iter().count(), 3);
        assert!(errors.iter().all(|(_, message)| message == NOT_AN_INTEGER));
    }

    #[test]
    fn parses_forms_and_refuses_other_types() {
        let fields = Fields::parse(
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"username=a%40b&password=x+y",
        )
        .unwrap();
        let mut errors = FieldErrors::new();
        assert_eq!(fields.text("username", &mut errors).as_deref(), Some("a@b"));
        assert_eq!(fields.text("password", &mut errors).as_deref(), Some("x y"));
        assert!(matches!(
            Fields::parse(Some("text/plain"), b"hi"),
            Err(ApiError::UnsupportedMediaType(media)) if media == "text/plain"
        ));
        assert_eq!(
            Fields::parse(Some("text/plain"), b"").unwrap(),
            Fields::default()
        );
    }

    #[test]
    fn refuses_malformed_json_and_non_objects() {
        assert!(matches!(
            Fields::parse(Some("application/json"), b"{"),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            Fields::parse(Some("application/json"), b"[1]"),
            Err(ApiError::Invalid(_))
        ));
    }

    #[test]
    fn tells_missing_from_null() {
        let mut errors = FieldErrors::new();
        let fields = json(r#"{"name": null}"#);
        assert_eq!(fields.required_text("name", &mut errors), None);
        assert_eq!(fields.required_text("other", &mut errors), None);
        let messages: Vec<_> = errors.iter().collect();
        assert_eq!(messages, [("name", NULL), ("other", REQUIRED)]);
    }
}
