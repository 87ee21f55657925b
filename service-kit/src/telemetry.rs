//! The tracing subscriber: `RUST_LOG` filters (default `info`), `LOG_FORMAT` picks plain text or
//! one JSON object per line.

use std::{io::IsTerminal, str::FromStr};

use tracing_subscriber::{EnvFilter, fmt};

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

/// Installs the global subscriber, filtered by `RUST_LOG` (default `info`). Later calls
/// (several services in one process, tests) are no-ops.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    init_filtered(format, filter);
}

/// As [`init`], with `directives` (`RUST_LOG`'s syntax) in place of `RUST_LOG`: for a process
/// that serves a service in-process beside other work (the bench's baselines).
pub fn init_with_directives(format: LogFormat, directives: &str) {
    init_filtered(format, EnvFilter::new(directives));
}

fn init_filtered(format: LogFormat, filter: EnvFilter) {
    // Colours only for a person at a terminal; files and log collectors get plain text.
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _already_set = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
