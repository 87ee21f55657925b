//! The served OpenAPI document, read as a client reads it: its operations, whether its schemas
//! are typed, example values of a schema, and whether an answer conforms to an operation (the
//! subset of JSON Schema the document uses: `$ref`, `oneOf`, `type`, `enum`, `nullable`,
//! `properties`, `required`, `additionalProperties`, `items`).

use reqwest::StatusCode;
use serde_json::{Value, json};

/// `/api/schema/`'s JSON.
pub struct Document(pub Value);

impl Document {
    /// Every operation: its path, method and JSON.
    pub fn operations(&self) -> Vec<(&str, &str, &Value)> {
        let paths = self.0["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, methods)| {
                let methods = methods.as_object().expect("methods");
                methods
                    .iter()
                    .map(move |(method, operation)| (path.as_str(), method.as_str(), operation))
            })
            .collect()
    }

    /// `schema`, its `$ref` followed.
    pub fn resolve(&self, schema: &Value) -> Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("a local reference: {reference}"));
                let target = &self.0["components"]["schemas"][name];
                assert!(target.is_object(), "{reference} resolves");
                self.resolve(target)
            }
            None => schema.clone(),
        }
    }

    /// Records in `problems` each part of `schema` that says nothing of its values: no `type`,
    /// `$ref` or `oneOf`, or an object with neither `properties` nor `additionalProperties`.
    pub fn typed(&self, schema: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(alternatives) = schema["oneOf"].as_array() {
            for one in alternatives {
                self.typed(one, at, problems);
            }
            return;
        }
        match schema["type"].as_str() {
            None => problems.push(format!("{at}: untyped {schema}")),
            Some("object") => {
                let properties = schema["properties"].as_object();
                let others = &schema["additionalProperties"];
                if properties.is_none() && !others.is_object() && !others.is_boolean() {
                    problems.push(format!("{at}: an object of nothing said {schema}"));
                }
                for (name, property) in properties.into_iter().flatten() {
                    self.typed(property, &format!("{at}.{name}"), problems);
                }
                if others.is_object() {
                    self.typed(others, &format!("{at}.*"), problems);
                }
            }
            Some("array") => self.typed(&schema["items"], &format!("{at}[]"), problems),
            Some(_) => {}
        }
    }

    /// `path` with each parameter an example value (`{id}` is 1, an enum its first choice).
    pub fn example_path(&self, path: &str, operation: &Value) -> String {
        let mut url = path.replace("{id}", "1");
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "path" {
                let name = parameter["name"].as_str().unwrap();
                let value = example(&parameter["schema"]);
                let text = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                url = url.replace(&format!("{{{name}}}"), &text);
            }
        }
        url
    }

    /// Whether an answer of `status`, `content_type` and `text` is one `operation` documents.
    pub fn admits(
        &self,
        operation: &Value,
        status: StatusCode,
        content_type: Option<&str>,
        text: &str,
    ) -> Result<(), String> {
        let response = &operation["responses"][status.as_str()];
        if response.is_null() {
            return Err(format!("{status} is not documented; body {text}"));
        }
        let Some(content) = response["content"].as_object() else {
            return match text.is_empty() {
                true => Ok(()),
                false => Err(format!("documented empty, got {text}")),
            };
        };
        let media_type = content_type
            .and_then(|value| value.split(';').next())
            .unwrap_or_default()
            .trim();
        let documented = content
            .get(media_type)
            .ok_or_else(|| format!("{media_type:?} is not among {:?}", content.keys()))?;
        if media_type != "application/json" {
            return Ok(());
        }
        let value: Value = serde_json::from_str(text).map_err(|err| format!("{err}: {text}"))?;
        self.validate(&documented["schema"], &value)
            .map_err(|why| format!("{why}; body {text}"))
    }

    /// Whether `schema` admits `value`; if not, where and why not.
    pub fn validate(&self, schema: &Value, value: &Value) -> Result<(), String> {
        let schema = self.resolve(schema);
        if let Some(alternatives) = schema["oneOf"].as_array() {
            let admitted = alternatives
                .iter()
                .filter(|one| self.validate(one, value).is_ok())
                .count();
            return match admitted {
                1 => Ok(()),
                n => Err(format!("{n} alternatives of {schema} admit {value}")),
            };
        }
        if value.is_null() {
            return match schema["nullable"].as_bool() {
                Some(true) => Ok(()),
                _ => Err(format!("null where {schema}")),
            };
        }
        let typed = match schema["type"].as_str() {
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            _ => return Err(format!("no type in {schema}")),
        };
        if !typed {
            return Err(format!("{value} is not a {}", schema["type"]));
        }
        if let Some(choices) = schema["enum"].as_array()
            && !choices.contains(value)
        {
            return Err(format!("{value} is not one of {choices:?}"));
        }
        if let Value::Array(items) = value {
            return items
                .iter()
                .try_for_each(|item| self.validate(&schema["items"], item));
        }
        let Value::Object(object) = value else {
            return Ok(());
        };
        for name in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(name.as_str().unwrap()) {
                return Err(format!("{name} is missing from {value}"));
            }
        }
        for (name, field) in object {
            match (&schema["properties"][name], &schema["additionalProperties"]) {
                (Value::Null, Value::Bool(false)) => {
                    return Err(format!("{name} is not declared in {schema}"));
                }
                (Value::Null, Value::Object(_)) => {
                    self.validate(&schema["additionalProperties"], field)
                }
                (Value::Null, _) => Ok(()),
                (property, _) => self.validate(property, field),
            }
            .map_err(|why| format!("{name}: {why}"))?;
        }
        Ok(())
    }
}

/// A value `schema` admits, of the kind a client would send: its `example`, its first choice
/// or alternative, or a plain value of its type.
pub fn example(schema: &Value) -> Value {
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    if let Some(first) = schema["enum"].get(0).or_else(|| schema["oneOf"].get(0)) {
        return match schema["enum"].get(0) {
            Some(choice) => choice.clone(),
            None => example(first),
        };
    }
    match schema["type"].as_str() {
        Some("object") => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, property)| (name.clone(), example(property)))
                .collect(),
        ),
        Some("array") => json!([example(&schema["items"])]),
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(true),
        _ => json!("Example-value-1"),
    }
}
