//! The tracing subscriber: `RUST_LOG` filters (default `info`), `LOG_FORMAT` picks plain text or
//! one JSON object per line; and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the same spans
//! exported over OTLP ([`traces`]), their trace context carried across the hops in W3C
//! `traceparent` headers and metadata ([`context`]).

pub mod context;
mod traces;

pub use traces::shutdown;

use std::{io::IsTerminal, str::FromStr};

use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::env::ConfigError;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Plain,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "plain" | "text" => Ok(Self::Plain),
            "json" => Ok(Self::Json),
            _ => Err("expected plain or json".to_owned()),
        }
    }
}

/// `RUST_LOG` when it is unset: what every program logs.
pub const DEFAULT_FILTER: &str = "info";

/// The settings the subscriber reads itself (not a program's `from_env`), with their defaults,
/// for `--help` and the documented table: the log filter, and the OTLP endpoint that turns the
/// export of spans on (the other standard `OTEL_*` variables are the SDK's, documented with it).
pub const SETTINGS: [(&str, &str); 2] = [
    ("RUST_LOG", DEFAULT_FILTER),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
];

fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// Installs the global subscriber, filtered by `RUST_LOG` (default `info`), logging only. Later
/// calls (several services in one process, tests) are no-ops.
pub fn init(format: LogFormat) {
    install(format, env_filter(), None);
}

/// As [`init`], and when the standard `OTEL_*` variables name an OTLP endpoint, exports every
/// span at `info` or above, finer ones too where `RUST_LOG` enables them, as `service` (unless
/// `OTEL_SERVICE_NAME` names it otherwise).
/// Call within the runtime, which the exporter's connection runs on; [`shutdown`] before exit
/// sends what is left.
pub fn init_with_traces(format: LogFormat, service: &str) -> Result<(), ConfigError> {
    let tracer = traces::tracer_from_env(service)?;
    install(format, env_filter(), tracer);
    Ok(())
}

/// As [`init`], with `directives` (`RUST_LOG`'s syntax) in place of `RUST_LOG`: for a process
/// that serves a service in-process beside other work (the bench's baselines).
pub fn init_with_directives(format: LogFormat, directives: &str) {
    install(format, EnvFilter::new(directives), None);
}

fn install(format: LogFormat, filter: EnvFilter, tracer: Option<opentelemetry_sdk::trace::Tracer>) {
    // Colours only for a person at a terminal; files and log collectors get plain text.
    let lines = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let lines = match format {
        LogFormat::Plain => lines.boxed(),
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
    };
    // `RUST_LOG` says which lines are written; spans are exported from `info` up (every
    // request's and call's) whatever the log shows, so that a quiet log (`RUST_LOG=warn`)
    // still gives whole traces. The export's filter is the whole stack's, a level (one filter
    // per layer for both layers dropped events: tracing-subscriber 0.3.23).
    let most_verbose = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let mut layers = vec![lines.with_filter(filter).boxed()];
    let mut level = most_verbose;
    if let Some(tracer) = tracer {
        layers.push(tracing_opentelemetry::layer().with_tracer(tracer).boxed());
        level = level.max(LevelFilter::INFO);
    }
    let _already_set = tracing_subscriber::registry()
        .with(level)
        .with(layers)
        .try_init();
}
