//! The OpenAPI 3 document at `/api/schema/`, generated from the same declarations the router is
//! built from (see `routes::Endpoint`), so every route is documented and every documented
//! operation is routed. Each [`Operation`] names its body's fields ([`body`], from the table its
//! handler reads), its success's schema (from the shapes the handler writes, see
//! `crate::shapes`) and the refusals only it gives; the refusals every route of its kind gives
//! (401 for a bad credential, 413 and 415 for a body, 404 for an id, ...) follow from how it
//! is declared, in the shapes `crate::error` writes ([`Refusal`]). The schemas are written in
//! [`schema`]'s vocabulary; the page that shows the document is `routes::docs`.

pub mod body;
mod responses;
pub mod schema;

use http::Method;
use serde_json::{Map, Value, json};

use self::responses::Responses;
pub use self::{
    body::Field,
    responses::{Content, Refusal},
    schema::Schema,
};

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: Method,
    /// The path, with its trailing slash and `{name}` parameters.
    pub path: &'static str,
    pub summary: &'static str,
    /// Whether a token or session is needed.
    pub authenticated: bool,
    /// Whether it takes an `Idempotency-Key` (a write its service applies once per key).
    pub idempotent: bool,
    /// Whether it sits behind the login throttle (the router says so as it mounts it).
    pub throttled: bool,
    /// Whether the gateway answers it alone: no credential read, no service called.
    pub local: bool,
    /// The body's fields; none for a route that reads no body.
    pub body: Vec<Field>,
    /// The success: its status and what it holds.
    pub success: (u16, Content),
    /// The answers besides the success and the refusals that follow from the declaration.
    pub others: Vec<(u16, &'static str, Content)>,
    /// The path's parameters other than a numeric `{id}`: their names and values.
    pub parameters: Vec<(&'static str, Schema)>,
}

impl Operation {
    /// An operation anyone may call, answering `success` with `content` (JSON of a [`Schema`],
    /// or text); it reads no body and takes no `Idempotency-Key`.
    pub fn new(
        method: Method,
        path: &'static str,
        summary: &'static str,
        success: u16,
        content: impl Into<Content>,
    ) -> Self {
        Self {
            method,
            path,
            summary,
            authenticated: false,
            idempotent: false,
            throttled: false,
            local: false,
            body: Vec::new(),
            success: (success, content.into()),
            others: Vec::new(),
            parameters: Vec::new(),
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

    /// The same operation, answered by the gateway alone.
    pub fn local(self) -> Self {
        Self {
            local: true,
            ..self
        }
    }

    /// The same operation, reading a body of `fields`.
    pub fn body(self, fields: impl IntoIterator<Item = Field>) -> Self {
        Self {
            body: fields.into_iter().collect(),
            ..self
        }
    }

    /// The same operation, its success holding `content` instead.
    pub fn answering(mut self, content: Content) -> Self {
        self.success.1 = content;
        self
    }

    /// The same operation, also answering `status` with `content`, for `reason`.
    pub fn also(mut self, status: u16, reason: &'static str, content: Content) -> Self {
        self.others.push((status, reason, content));
        self
    }

    /// The same operation, its path's `{name}` taking `values`.
    pub fn parameter(mut self, name: &'static str, values: Schema) -> Self {
        self.parameters.push((name, values));
        self
    }

    /// The method as OpenAPI spells it.
    fn method_name(&self) -> String {
        self.method.as_str().to_ascii_lowercase()
    }

    /// Whether the method may change something (and so reads an `Idempotency-Key` to check
    /// it, and may be refused by a CSRF check).
    fn unsafe_method(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }

    /// Every answer of the operation, by status.
    fn responses(&self) -> Responses {
        let mut responses = Responses::default();
        let (status, content) = &self.success;
        responses.add(*status, "Success", content.clone());
        for (status, reason, content) in &self.others {
            responses.add(*status, reason, content.clone());
        }
        if !self.body.is_empty() {
            responses.refuse(400, "Invalid fields", Refusal::FieldErrors);
            responses.refuse(400, "Malformed JSON", Refusal::Detail);
            responses.refuse(413, "The body is over 1 MiB", Refusal::Detail);
            responses.refuse(415, "Not JSON nor a form", Refusal::Detail);
        }
        if self.unsafe_method() && !self.local {
            responses.refuse(400, "A malformed Idempotency-Key", Refusal::Detail);
        }
        if self.path.contains("{id}") {
            responses.refuse(404, "No such object", Refusal::Detail);
        }
        if self.idempotent {
            responses.refuse(
                422,
                "The Idempotency-Key was used with another request",
                Refusal::Detail,
            );
        }
        if self.throttled {
            responses.refuse(429, "Throttled: see Retry-After", Refusal::Detail);
        }
        if !self.local {
            responses.refuse(
                401,
                "Not authenticated: see WWW-Authenticate",
                Refusal::Detail,
            );
            if self.authenticated {
                responses.refuse(403, "Not allowed, or a failed CSRF check", Refusal::Detail);
            }
            responses.refuse(500, "A server error", Refusal::Detail);
            responses.refuse(503, "A service is unavailable", Refusal::Detail);
        }
        responses.refuse(504, "The request's deadline passed", Refusal::Detail);
        responses
    }

    fn to_json(&self, components: &mut Map<String, Value>) -> Value {
        let mut operation = json!({
            "summary": self.summary,
            "operationId": format!("{}{}", self.method_name(), self.path.replace(['/', '{', '}', '-', '.'], "_")),
            "responses": self.responses().to_json(components),
        });
        let object = operation
            .as_object_mut()
            .expect("the literal above is an object");
        let mut parameters = Vec::new();
        if self.path.contains("{id}") {
            parameters.push(json!({
                "name": "id", "in": "path", "required": true,
                "schema": { "type": "integer", "format": "int64", "minimum": 0 }
            }));
        }
        for (name, values) in &self.parameters {
            parameters.push(json!({
                "name": name, "in": "path", "required": true, "schema": values.write(components)
            }));
        }
        if self.idempotent {
            parameters.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Applies the write once: a repeat with the same key and body gets \
                    the first answer, another body is a 422. 1 to 255 printable ASCII \
                    characters, bare or as a quoted string.",
                "schema": {
                    "type": "string", "minLength": 1, "maxLength": proto::idempotency::MAX_LEN,
                    "pattern": "^[!-~]([ -~]*[!-~])?$"
                }
            }));
        }
        if !parameters.is_empty() {
            object.insert("parameters".to_owned(), Value::Array(parameters));
        }
        if !self.body.is_empty() {
            let schema = body::schema(&self.body).write(components);
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
    let mut components = Map::new();
    for operation in operations {
        let path = paths
            .entry(operation.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = path {
            methods.insert(operation.method_name(), operation.to_json(&mut components));
        }
    }
    components.sort_keys();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Inventory gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A Django-REST-Framework-compatible API over the auth and inventory services."
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "tokenAuth": {
                    "type": "apiKey", "in": "header", "name": "Authorization",
                    "description": "`Token <key>` or `Bearer <key>`"
                },
                "cookieAuth": { "type": "apiKey", "in": "cookie", "name": "sessionid" }
            }
        }
    })
}
