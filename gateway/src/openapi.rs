//! The OpenAPI 3 document at `/api/schema/`, generated from the same declarations the router is
//! built from (see `routes::Endpoint`), so every route is documented and every documented
//! operation is routed.

use http::Method;
use serde_json::{Map, Value, json};

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: Method,
    /// The path, with its trailing slash and `{id}` parameters.
    pub path: &'static str,
    pub summary: &'static str,
    /// Whether a token or session is needed.
    pub authenticated: bool,
    /// The body's fields.
    pub body: &'static [&'static str],
    /// The status of success.
    pub success: u16,
    /// Whether it takes an `Idempotency-Key` (a write its service applies once per key).
    pub idempotent: bool,
}

impl Operation {
    /// An operation anyone may call, taking no `Idempotency-Key`.
    pub fn new(
        method: Method,
        path: &'static str,
        summary: &'static str,
        body: &'static [&'static str],
        success: u16,
    ) -> Self {
        Self {
            method,
            path,
            summary,
            authenticated: false,
            body,
            success,
            idempotent: false,
        }
    }

    /// The same operation, for callers with a token or session only.
    pub fn authenticated(self) -> Self {
        Self {
            authenticated: true,
            ..self
        }
    }

    /// The same operation, taking an `Idempotency-Key`.
    pub fn idempotent(self) -> Self {
        Self {
            idempotent: true,
            ..self
        }
    }

    /// The method as OpenAPI spells it.
    fn method_name(&self) -> String {
        self.method.as_str().to_ascii_lowercase()
    }

    fn to_json(&self) -> Value {
        let mut operation = json!({
            "summary": self.summary,
            "operationId": format!("{}{}", self.method_name(), self.path.replace(['/', '{', '}', '-'], "_")),
            "responses": {
                self.success.to_string(): { "description": "Success" },
                "4XX": {
                    "description": "A DRF error: {\"detail\": ...} or field errors",
                    "content": { "application/json": { "schema": { "type": "object" } } }
                }
            }
        });
        let object = operation
            .as_object_mut()
            .expect("the literal above is an object");
        let mut parameters = Vec::new();
        if self.path.contains("{id}") {
            parameters.push(
                json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } }),
            );
        }
        if self.idempotent {
            parameters.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Applies the write once: a repeat with the same key and body gets \
                    the first answer, another body is a 422. 1 to 255 printable ASCII \
                    characters, bare or as a quoted string.",
                "schema": { "type": "string", "minLength": 1, "maxLength": proto::idempotency::MAX_LEN }
            }));
            object["responses"]["422"] = json!({
                "description": "The Idempotency-Key was used with another request",
                "content": { "application/json": { "schema": { "type": "object" } } }
            });
        }
        if !parameters.is_empty() {
            object.insert("parameters".to_owned(), Value::Array(parameters));
        }
        if !self.body.is_empty() {
            let properties: Map<String, Value> = self
                .body
                .iter()
                .map(|field| ((*field).to_owned(), json!({})))
                .collect();
            let schema = json!({ "type": "object", "properties": properties });
            object.insert(
                "requestBody".to_owned(),
                json!({ "content": {
                    "application/json": { "schema": schema },
                    "application/x-www-form-urlencoded": { "schema": schema },
                } }),
            );
        }
        if self.authenticated {
            object.insert(
                "security".to_owned(),
                json!([{ "tokenAuth": [] }, { "cookieAuth": [] }]),
            );
        }
        operation
    }
}

/// The OpenAPI 3 document of `operations`.
pub fn document(operations: &[Operation]) -> Value {
    let mut paths = Map::new();
    for operation in operations {
        let path = paths
            .entry(operation.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = path {
            methods.insert(operation.method_name(), operation.to_json());
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Inventory gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A Django-REST-Framework-compatible API over the auth and inventory services."
        },
        "paths": paths,
        "components": { "securitySchemes": {
            "tokenAuth": {
                "type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <key>` or `Bearer <key>`"
            },
            "cookieAuth": { "type": "apiKey", "in": "cookie", "name": "sessionid" }
        } }
    })
}
