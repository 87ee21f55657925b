//! The shape of every binary's `main`: the command line (whose `--help` lists the program's
//! settings, [`parse_cli`]), the settings read and checked from the environment before anything
//! starts, the log subscriber, then the command (serve, or one of the program's subcommands). A failure at any step is one line, `<program>: <why>`, on standard error and
//! exit status 1. Every server has the one life cycle of [`Server`], so serving is
//! [`serve`] in every program.

use std::{fmt::Display, future::Future, net::SocketAddr, process::ExitCode};

use crate::{
    env::{ConfigError, Setting},
    shutdown,
    telemetry::{self, LogFormat},
};

/// Parses the command line as `C`, with `settings` (what the program's `from_env` reads, see
/// [`crate::env::settings_read_by`]) listed after `--help`'s usage.
pub fn parse_cli<C: clap::Parser>(settings: &[Setting]) -> C {
    let matches = C::command()
        .after_help(settings_help(settings))
        .get_matches();
    C::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

/// `--help`'s list of settings: each variable and its default.
fn settings_help(settings: &[Setting]) -> String {
    let width = settings
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0)
        .max("RUST_LOG".len());
    let mut help = String::from(
        "Settings, from the environment (each explained in docs/API.md, \"Configuration\"):\n",
    );
    for Setting { name, default } in settings {
        let default = if default.is_empty() { "none" } else { default };
        help.push_str(&format!("  {name:<width$}  [default: {default}]\n"));
    }
    let filter = telemetry::DEFAULT_FILTER;
    help.push_str(&format!("  {:<width$}  [default: {filter}]\n", "RUST_LOG"));
    help
}

/// A server's life: built from its settings (a service opens and migrates its database before
/// it binds its port, so that an open port belongs to a server that can answer), then serving
/// until told to stop, handing over to the other replicas and draining the calls in flight on
/// the way out.
pub trait Server: Sized {
    type Settings;
    type Error: Display;

    fn build(settings: Self::Settings) -> impl Future<Output = Result<Self, Self::Error>>;

    /// The address bound (the real port when the settings asked for port 0).
    fn local_addr(&self) -> SocketAddr;

    /// Serves until `shutdown` resolves; returns once the calls in flight have finished.
    fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A program's default command: builds `S` and serves until SIGTERM or Ctrl-C.
pub async fn serve<S: Server>(settings: S::Settings) -> Result<(), String> {
    let server = S::build(settings).await.map_err(|err| err.to_string())?;
    server
        .run_until_stopped(shutdown::signal())
        .await
        .map_err(|err| err.to_string())
}

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
