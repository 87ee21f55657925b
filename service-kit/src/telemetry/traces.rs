//! Spans exported over OTLP/gRPC when the standard variables ask for it:
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` (unset or empty: no
//! export, and no cost), `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`, the one built in),
//! `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_EXPORTER=none`, and the
//! batch processor's `OTEL_BSP_*`, all read by the OpenTelemetry SDK itself.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{
    Resource,
    trace::{SdkTracerProvider, Tracer},
};

use crate::env::ConfigError;

/// The provider whose batch processor sends the spans; flushed by [`shutdown`].
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The first set, non-empty variable of `names`, with its name.
fn first_set(names: &[&'static str]) -> Option<(&'static str, String)> {
    names.iter().find_map(|&name| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .map(|value| (name, value))
    })
}

/// The tracer spans are exported through, or `None` when no endpoint is set.
pub(super) fn tracer_from_env(service: &str) -> Result<Option<Tracer>, ConfigError> {
    let endpoint = first_set(&[
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]);
    let exporter = first_set(&["OTEL_TRACES_EXPORTER"]);
    if endpoint.is_none() || exporter.is_some_and(|(_, value)| value.trim() == "none") {
        return Ok(None);
    }
    if let Some((name, protocol)) = first_set(&[
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]) && protocol.trim() != "grpc"
    {
        return Err(ConfigError::new(
            name,
            protocol,
            "only grpc is built in (OTLP over gRPC, port 4317 by convention)",
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|err| {
            let (name, value) = endpoint.unwrap_or_default();
            ConfigError::new(name, value, err)
        })?;
    let mut resource = Resource::builder();
    if first_set(&["OTEL_SERVICE_NAME"]).is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    if PROVIDER.set(provider).is_err() {
        // Another service in this process set up export first: its spans carry this one's.
        return Ok(None);
    }
    super::context::enable();
    Ok(Some(tracer))
}

/// Sends the spans not yet exported and stops the exporter; before the process exits.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(err) = provider.shutdown()
    {
        tracing::warn!(%err, "the last spans could not be exported");
    }
}
