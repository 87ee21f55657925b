//! The schemas of the document: a small typed vocabulary (the subset of OpenAPI 3.0's JSON
//! Schema the gateway's bodies need), written as JSON by [`Schema::write`], which hoists every
//! [`Schema::named`] schema into `components/schemas` and refers to it there. The shapes and
//! the route tables describe their bodies in it, next to the code that writes or reads them;
//! [`Schema::admits`] checks a value against a schema, so their tests can hold the two together.

use std::sync::Arc;

use serde_json::{Map, Value, json};

/// A JSON Schema, as the OpenAPI 3.0 document spells it.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    /// A string, a number, an integer or a boolean: its schema as written (`type`, `format`,
    /// `enum`, `nullable`, ...).
    Scalar(Value),
    /// A list of one kind of item.
    Array(Box<Schema>),
    /// An object with these properties, in order; `required` names those always there. Only
    /// an `open` object may hold others too.
    Object {
        properties: Vec<(&'static str, Schema)>,
        required: Vec<&'static str>,
        open: bool,
    },
    /// An object whose every property (any name) holds `Schema`.
    Map(Box<Schema>),
    /// A value of exactly one of these schemas.
    OneOf(Vec<Schema>),
    /// A component: written once under `components/schemas`, referred to by name.
    Named(&'static str, Arc<Schema>),
}

impl Schema {
    pub fn string() -> Self {
        Self::Scalar(json!({ "type": "string" }))
    }

    /// A 64-bit integer.
    pub fn integer() -> Self {
        Self::Scalar(json!({ "type": "integer", "format": "int64" }))
    }

    pub fn boolean() -> Self {
        Self::Scalar(json!({ "type": "boolean" }))
    }

    /// An RFC 3339 timestamp.
    pub fn date_time() -> Self {
        Self::Scalar(json!({ "type": "string", "format": "date-time" }))
    }

    /// A decimal written as its exact text, as DRF's `DecimalField` answers (`"19.99"`).
    pub fn decimal_text() -> Self {
        Self::Scalar(json!({
            "type": "string", "format": "decimal", "pattern": "^-?[0-9]+(\\.[0-9]+)?$",
            "example": "19.99"
        }))
    }

    /// A string that is one of `choices`.
    pub fn one_of_strings(choices: impl IntoIterator<Item = &'static str>) -> Self {
        let choices: Vec<&str> = choices.into_iter().collect();
        Self::Scalar(json!({ "type": "string", "enum": choices }))
    }

    /// A string that is always `text`.
    pub fn constant(text: &'static str) -> Self {
        Self::one_of_strings([text])
    }

    /// A body of text (a page, a script, Prometheus' format), which JSON Schema sees as a string.
    pub fn text() -> Self {
        Self::string()
    }

    /// The same scalar, or `null`.
    ///
    /// # Panics
    /// If `self` is not a scalar (OpenAPI 3.0 cannot mark a reference nullable).
    pub fn nullable(self) -> Self {
        match self {
            Self::Scalar(mut schema) => {
                schema["nullable"] = json!(true);
                Self::Scalar(schema)
            }
            other => panic!("only a scalar is declared nullable here, not {other:?}"),
        }
    }

    pub fn array(items: Self) -> Self {
        Self::Array(Box::new(items))
    }

    /// An object with every one of `properties`, in order.
    pub fn object(properties: impl IntoIterator<Item = (&'static str, Self)>) -> Self {
        let properties: Vec<_> = properties.into_iter().collect();
        let required = properties.iter().map(|(name, _)| *name).collect();
        Self::Object {
            properties,
            required,
            open: false,
        }
    }

    /// An object of `properties`, of which only `required` are always there.
    pub fn object_with_optional(
        properties: impl IntoIterator<Item = (&'static str, Self)>,
        required: impl IntoIterator<Item = &'static str>,
    ) -> Self {
        Self::Object {
            properties: properties.into_iter().collect(),
            required: required.into_iter().collect(),
            open: false,
        }
    }

    /// An object mapping any name to `values`.
    pub fn map(values: Self) -> Self {
        Self::Map(Box::new(values))
    }

    /// `schema`, named: written once under `components/schemas/{name}`.
    pub fn named(name: &'static str, schema: Self) -> Self {
        Self::Named(name, Arc::new(schema))
    }

    /// The JSON of this schema; each named schema it holds is added to `components` (once) and
    /// referred to.
    pub fn write(&self, components: &mut Map<String, Value>) -> Value {
        match self {
            Self::Scalar(schema) => schema.clone(),
            Self::Array(items) => json!({ "type": "array", "items": items.write(components) }),
            Self::Object {
                properties,
                required,
                open,
            } => {
                let written: Map<String, Value> = properties
                    .iter()
                    .map(|(name, schema)| ((*name).to_owned(), schema.write(components)))
                    .collect();
                let mut object = json!({
                    "type": "object",
                    "properties": written,
                });
                if !open {
                    object["additionalProperties"] = json!(false);
                }
                if !required.is_empty() {
                    object["required"] = json!(required);
                }
                object
            }
            Self::Map(values) => {
                json!({ "type": "object", "additionalProperties": values.write(components) })
            }
            Self::OneOf(schemas) => {
                let written: Vec<Value> = schemas.iter().map(|s| s.write(components)).collect();
                json!({ "oneOf": written })
            }
            Self::Named(name, schema) => {
                if !components.contains_key(*name) {
                    // Reserved first, so that a schema naming itself ends.
                    components.insert((*name).to_owned(), Value::Null);
                    let written = schema.write(components);
                    components.insert((*name).to_owned(), written);
                }
                json!({ "$ref": format!("#/components/schemas/{name}") })
            }
        }
    }

    /// Whether `value` is one this schema describes; if not, where and why not.
    pub fn admits(&self, value: &Value) -> Result<(), String> {
        match (self, value) {
            (Self::Scalar(schema), value) => scalar_admits(schema, value),
            (Self::Array(items), Value::Array(values)) => {
                values.iter().enumerate().try_for_each(|(i, value)| {
                    items.admits(value).map_err(|why| format!("[{i}]: {why}"))
                })
            }
            (
                Self::Object {
                    properties,
                    required,
                    open,
                },
                Value::Object(object),
            ) => {
                if let Some(missing) = required.iter().find(|name| !object.contains_key(**name)) {
                    return Err(format!("{missing} is missing"));
                }
                object.iter().try_for_each(|(name, value)| {
                    match properties.iter().find(|(declared, _)| declared == name) {
                        Some((_, schema)) => {
                            schema.admits(value).map_err(|why| format!("{name}: {why}"))
                        }
                        None if *open => Ok(()),
                        None => Err(format!("{name} is not declared")),
                    }
                })
            }
            (Self::Map(values), Value::Object(object)) => {
                object.iter().try_for_each(|(name, value)| {
                    values.admits(value).map_err(|why| format!("{name}: {why}"))
                })
            }
            (Self::OneOf(schemas), value) => {
                let admitted = schemas.iter().filter(|s| s.admits(value).is_ok()).count();
                match admitted {
                    1 => Ok(()),
                    n => Err(format!(
                        "{n} of {} alternatives admit {value}",
                        schemas.len()
                    )),
                }
            }
            (Self::Named(name, schema), value) => {
                schema.admits(value).map_err(|why| format!("{name}: {why}"))
            }
            (schema, value) => Err(format!("{value} is not {}", schema.kind())),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Array(_) => "a list",
            Self::Object { .. } | Self::Map(_) => "an object",
            _ => "a value of the schema",
        }
    }
}

/// Whether a scalar schema's `type`, `enum` and `nullable` admit `value`.
fn scalar_admits(schema: &Value, value: &Value) -> Result<(), String> {
    if value.is_null() {
        return match schema["nullable"] {
            Value::Bool(true) => Ok(()),
            _ => Err("null is not allowed".to_owned()),
        };
    }
    let typed = match schema["type"].as_str() {
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        other => return Err(format!("no scalar type {other:?}")),
    };
    if !typed {
        return Err(format!("{value} is not of type {}", schema["type"]));
    }
    match schema["enum"].as_array() {
        Some(choices) if !choices.contains(value) => {
            Err(format!("{value} is not one of {choices:?}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_schemas_are_written_once_and_referred_to() {
        let point = Schema::named("Point", Schema::object([("x", Schema::integer())]));
        let mut components = Map::new();
        let written =
            Schema::array(Schema::OneOf(vec![point.clone(), point])).write(&mut components);
        assert_eq!(
            written["items"]["oneOf"][1]["$ref"],
            "#/components/schemas/Point"
        );
        assert_eq!(
            components["Point"],
            json!({
                "type": "object", "properties": { "x": { "type": "integer", "format": "int64" } },
                "additionalProperties": false, "required": ["x"]
            })
        );
    }

    #[test]
    fn admits_only_what_it_describes() {
        let schema = Schema::object_with_optional(
            [
                ("id", Schema::integer()),
                ("name", Schema::string().nullable()),
                ("role", Schema::one_of_strings(["A", "B"])),
            ],
            ["id"],
        );
        assert_eq!(
            schema.admits(&json!({"id": 1, "name": null, "role": "A"})),
            Ok(())
        );
        for (refused, why) in [
            (json!({"name": "x"}), "id is missing"),
            (json!({"id": "1"}), "id: \"1\" is not of type \"integer\""),
            (json!({"id": 1, "extra": 2}), "extra is not declared"),
            (
                json!({"id": 1, "role": "C"}),
                "role: \"C\" is not one of [String(\"A\"), String(\"B\")]",
            ),
            (json!([]), "[] is not an object"),
        ] {
            assert_eq!(schema.admits(&refused), Err(why.to_owned()));
        }
        let errors = Schema::map(Schema::array(Schema::string()));
        assert_eq!(errors.admits(&json!({"a": ["x"]})), Ok(()));
        assert!(errors.admits(&json!({"a": "x"})).is_err());
    }
}
