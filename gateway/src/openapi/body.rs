//! What a route's request body may hold, as the route reads it: each field's name, which of
//! [`crate::extract::Fields`]' readers takes it (so which JSON types it accepts) and whether the
//! route requires it. A route declares its fields in a table next to the code that reads them,
//! and the document writes the body's schema from that table.

use proto::auth::v1::Role;

use super::Schema;

/// Which reader of [`crate::extract::Fields`] takes a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Fields::text`: a string (a number is taken as its text).
    Text,
    /// `Fields::integer`: an integer (or its text).
    Integer,
    /// `Fields::decimal`: a number, or a string holding one, kept exact.
    Decimal,
    /// `Fields::boolean`: `true`/`false` (or DRF's spellings of them).
    Boolean,
    /// `Fields::text` read by `shapes::read_role`: a role's name.
    Role,
}

/// One field of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    /// Whether the route refuses a body without it (with DRF's "This field is required.", or
    /// with the route's own refusal, as seeds 000 to 002's logins do).
    pub required: bool,
}

impl Field {
    const fn of(name: &'static str, kind: Kind) -> Self {
        Self {
            name,
            kind,
            required: false,
        }
    }

    pub const fn text(name: &'static str) -> Self {
        Self::of(name, Kind::Text)
    }

    pub const fn integer(name: &'static str) -> Self {
        Self::of(name, Kind::Integer)
    }

    pub const fn decimal(name: &'static str) -> Self {
        Self::of(name, Kind::Decimal)
    }

    pub const fn boolean(name: &'static str) -> Self {
        Self::of(name, Kind::Boolean)
    }

    pub const fn role(name: &'static str) -> Self {
        Self::of(name, Kind::Role)
    }

    /// The same field, required.
    pub const fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }

    /// The field's value, as a request may send it.
    pub fn schema(&self) -> Schema {
        match self.kind {
            Kind::Text => Schema::string(),
            Kind::Integer => Schema::integer(),
            Kind::Decimal => Schema::OneOf(vec![
                Schema::decimal_text(),
                Schema::Scalar(serde_json::json!({ "type": "number" })),
            ]),
            Kind::Boolean => Schema::boolean(),
            Kind::Role => Schema::one_of_strings(Role::ASSIGNABLE.map(Role::name)),
        }
    }
}

/// The schema of a body of `fields`. Fields it does not declare are ignored, as DRF's
/// serializers ignore them, so the object is open.
pub fn schema(fields: &[Field]) -> Schema {
    Schema::Object {
        properties: fields.iter().map(|f| (f.name, f.schema())).collect(),
        required: fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name)
            .collect(),
        open: true,
    }
}
