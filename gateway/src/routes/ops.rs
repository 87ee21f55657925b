//! The routes for operators and tools: liveness, readiness (both services answer their health
//! checks), Prometheus metrics and the OpenAPI document.

use axum::{
    Json,
    extract::State,
    http::{Method, StatusCode, header},
    response::IntoResponse,
};
use serde_json::{Map, Value, json};

use super::{AppState, Endpoint};
use crate::{clients::Upstreams, openapi::Operation};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/api/schema/",
                "This OpenAPI document",
                &[],
                200,
            ),
            schema,
        ),
        Endpoint::new(
            Operation::new(Method::GET, "/healthz/", "Liveness", &[], 200),
            healthz,
        ),
        Endpoint::new(
            Operation::new(
                Method::GET,
                "/readyz/",
                "Readiness: both services reachable (else 503)",
                &[],
                200,
            ),
            readyz,
        ),
        Endpoint::new(
            Operation::new(Method::GET, "/metrics/", "Prometheus metrics", &[], 200),
            metrics,
        ),
    ]
}

async fn schema(State(state): State<AppState>) -> Json<Value> {
    Json(Value::clone(&state.schema))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(upstreams): State<Upstreams>) -> (StatusCode, Json<Value>) {
    let services = upstreams.readiness().await;
    let ready = services.iter().all(|(_, serving)| *serving);
    let body: Map<String, Value> = services
        .iter()
        .map(|(name, serving)| {
            let state = if *serving { "ok" } else { "unavailable" };
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
