//! The shape of every binary's `main`: the settings read and checked from the environment before
//! anything starts, the log subscriber, then the command (serve, or one of the program's
//! subcommands). A failure at any step is one line, `<program>: <why>`, on standard error and
//! exit status 1.

use std::{fmt::Display, future::Future, process::ExitCode};

use crate::{
    env::ConfigError,
    telemetry::{self, LogFormat},
};

/// Runs `command` as `program` with `settings`, the program's settings as read from the
/// environment, whose `log_format` (`LOG_FORMAT`) picks the log subscriber's output.
pub async fn run<Settings, Command, Failure>(
    program: &str,
    settings: Result<Settings, ConfigError>,
    log_format: impl FnOnce(&Settings) -> LogFormat,
    command: impl FnOnce(Settings) -> Command,
) -> ExitCode
where
    Command: Future<Output = Result<(), Failure>>,
    Failure: Display,
{
    let settings = match settings {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("{program}: {err}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(log_format(&settings));
    match command(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{program}: {failure}");
            ExitCode::FAILURE
        }
    }
}
