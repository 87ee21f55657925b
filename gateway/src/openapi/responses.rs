//! An operation's answers, status by status: what each holds ([`Content`]), and the shapes of
//! the refusals [`crate::error::ApiError`] writes ([`Refusal`]), each a component of the
//! document. Where one status answers several shapes (a 400 of field errors or of a detail),
//! the document says `oneOf` them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::Schema;

/// What an answer holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// JSON of this schema.
    Json(Schema),
    /// Text of one of these media types (a page, a script, Prometheus' format).
    Text(&'static [&'static str]),
    /// Nothing (204).
    Empty,
}

impl From<Schema> for Content {
    fn from(schema: Schema) -> Self {
        Self::Json(schema)
    }
}

/// The shapes `ApiError` answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `{"detail": "..."}`: DRF's shape for every error not tied to a field.
    Detail,
    /// `{"field": ["message", ...]}`: DRF's validation errors, one list per field
    /// (`non_field_errors` for the others).
    FieldErrors,
    /// `{"error": "Invalid credentials"}`: seeds 000 to 002's login refusal.
    InvalidCredentials,
}

impl Refusal {
    pub fn schema(self) -> Schema {
        match self {
            Self::Detail => Schema::named("Detail", Schema::object([("detail", Schema::string())])),
            Self::FieldErrors => {
                Schema::named("FieldErrors", Schema::map(Schema::array(Schema::string())))
            }
            Self::InvalidCredentials => Schema::named(
                "InvalidCredentials",
                Schema::object([("error", Schema::constant("Invalid credentials"))]),
            ),
        }
    }
}

/// One status's answer: why it is given, and the schemas it may hold.
#[derive(Debug, Default)]
struct Answer {
    reasons: Vec<&'static str>,
    json: Vec<Schema>,
    text: Vec<&'static str>,
}

/// An operation's answers, by status.
#[derive(Debug, Default)]
pub(super) struct Responses(BTreeMap<u16, Answer>);

impl Responses {
    /// `status`, given for `reason`, holds `content`.
    pub(super) fn add(&mut self, status: u16, reason: &'static str, content: Content) {
        let answer = self.0.entry(status).or_default();
        if !answer.reasons.contains(&reason) {
            answer.reasons.push(reason);
        }
        match content {
            Content::Json(schema) if !answer.json.contains(&schema) => answer.json.push(schema),
            Content::Text(media_types) => answer.text.extend(media_types),
            Content::Json(_) | Content::Empty => {}
        }
    }

    /// `status`, given for `reason`, is a refusal of `shape`.
    pub(super) fn refuse(&mut self, status: u16, reason: &'static str, shape: Refusal) {
        self.add(status, reason, Content::Json(shape.schema()));
    }

    pub(super) fn to_json(&self, components: &mut Map<String, Value>) -> Value {
        let mut responses = Map::new();
        for (status, answer) in &self.0 {
            let mut response = json!({ "description": answer.reasons.join("; ") });
            let mut content = Map::new();
            match &answer.json[..] {
                [] => {}
                [one] => {
                    content.insert(
                        "application/json".into(),
                        json!({ "schema": one.write(components) }),
                    );
                }
                several => {
                    let schema = Schema::OneOf(several.to_vec()).write(components);
                    content.insert("application/json".into(), json!({ "schema": schema }));
                }
            }
            for media_type in &answer.text {
                content.insert(
                    (*media_type).to_owned(),
                    json!({ "schema": Schema::text().write(components) }),
                );
            }
            if !content.is_empty() {
                response["content"] = Value::Object(content);
            }
            if let Some(headers) = headers(*status) {
                response["headers"] = headers;
            }
            responses.insert(status.to_string(), response);
        }
        Value::Object(responses)
    }
}

/// The headers a refusal of `status` carries.
fn headers(status: u16) -> Option<Value> {
    let seconds = json!({ "type": "integer", "minimum": 1 });
    match status {
        401 => Some(json!({ "WWW-Authenticate": {
            "description": "`Token`, on a refused credential (DRF's TokenAuthentication)",
            "schema": { "type": "string" }
        } })),
        429 => Some(json!({ "Retry-After": {
            "description": "Seconds until a retry may pass", "required": true, "schema": seconds
        } })),
        503 => Some(json!({ "Retry-After": {
            "description": "Seconds to wait, when the service said how long", "schema": seconds
        } })),
        _ => None,
    }
}
