//! The routes for operators and tools: liveness, readiness (both services answer their health
//! checks), Prometheus metrics and the OpenAPI document (its page is [`super::docs`]).

use axum::{
    Json,
    extract::State,
    http::{Method, StatusCode, header},
    response::IntoResponse,
};
use serde_json::{Map, Value, json};

use super::{AppState, Endpoint};
use crate::{
    clients::Upstreams,
    openapi::{Content, Operation, Schema},
};

pub fn endpoints() -> Vec<Endpoint> {
    // The services' states, by the names `Upstreams::readiness` gives them (the route tests
    // and the fuzz's conformance checks hold the two together).
    let readiness = Schema::object(
        ["auth", "inventory"].map(|name| (name, Schema::one_of_strings([OK, UNAVAILABLE]))),
    );
    vec![
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/api/schema/",
                "This OpenAPI document",
                200,
                document_schema(),
            )
            .local(),
            schema,
        ),
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/healthz/",
                "Liveness",
                200,
                Schema::object([("status", Schema::constant(OK))]),
            )
            .local(),
            healthz,
        ),
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/readyz/",
                "Readiness: both services reachable (else 503)",
                200,
                readiness.clone(),
            )
            .also(503, "A service is unreachable", Content::Json(readiness))
            .local(),
            readyz,
        ),
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/metrics/",
                "Prometheus metrics",
                200,
                Content::Text(&["text/plain"]),
            )
            .local(),
            metrics,
        ),
    ]
}

const OK: &str = "ok";
const UNAVAILABLE: &str = "unavailable";

/// An OpenAPI 3.0 document, as far as this one promises: its version, `info` and `paths`.
fn document_schema() -> Schema {
    let open = || Schema::Object {
        properties: Vec::new(),
        required: Vec::new(),
        open: true,
    };
    Schema::Object {
        properties: vec![
            ("openapi", Schema::constant("3.0.3")),
            ("info", open()),
            ("paths", open()),
            ("components", open()),
        ],
        required: vec!["openapi", "info", "paths"],
        open: true,
    }
}

async fn schema(State(state): State<AppState>) -> Json<Value> {
    Json(Value::clone(&state.schema))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": OK }))
}

async fn readyz(State(upstreams): State<Upstreams>) -> (StatusCode, Json<Value>) {
    let services = upstreams.readiness().await;
    let ready = services.iter().all(|(_, serving)| *serving);
    let body: Map<String, Value> = services
        .iter()
        .map(|(name, serving)| {
            let state = if *serving { OK } else { UNAVAILABLE };
            ((*name).to_owned(), json!(state))
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Value::Object(body)))
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        service_kit::metrics::render(),
    )
}
