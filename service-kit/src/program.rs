//! The shape of every binary's `main`, [`main`]: the command line (whose `--help` lists the
//! program's settings), the settings read and checked from the environment before anything
//! starts, the log subscriber, then the command: serve, or one of the program's subcommands. A
//! failure at any step is one line, `<program>: <why>`, on standard error and exit status 1.
//! Every server has the one life cycle of [`Server`], stopped by a [`Stop`]; every program's
//! settings are [`FromEnv`].

use std::{fmt::Display, future::Future, net::SocketAddr, process::ExitCode};

use crate::{
    env::{self, ConfigError, Setting},
    shutdown,
    telemetry::{self, LogFormat},
};

/// A program's settings: read, and checked, from the environment.
pub trait FromEnv: Sized {
    fn from_env() -> Result<Self, ConfigError>;

    /// `LOG_FORMAT`: how the log subscriber writes.
    fn log_format(&self) -> LogFormat;
}

/// The `main` of the binary `program` (its name, version and about) of the server `S`: parses
/// the command line, whose subcommands are `C`'s and whose `--help` lists the settings; reads
/// the settings and starts the log subscriber; then serves until SIGTERM or Ctrl-C when no
/// subcommand is given, else runs `command` with the subcommand.
pub async fn main<S, C, Run>(
    program: clap::Command,
    command: impl FnOnce(C, S::Settings) -> Run,
) -> ExitCode
where
    S: Server<Settings: FromEnv>,
    C: clap::Subcommand,
    Run: Future<Output = Result<(), String>>,
{
    let name = program.get_name().to_owned();
    let settings = env::settings_read_by(S::Settings::from_env);
    let subcommand = parse_command::<C>(program.after_help(settings_help(&settings)));
    run(&name, S::Settings::from_env(), |settings| async move {
        match subcommand {
            None => serve::<S>(settings).await,
            Some(subcommand) => command(subcommand, settings).await,
        }
    })
    .await
}

/// The command line of the binary that calls it: its Cargo package's name and version, and
/// `about`, what `--help` says it does. For [`main`](crate::program::main).
#[macro_export]
macro_rules! program {
    ($about:expr) => {
        ::clap::Command::new(env!("CARGO_PKG_NAME"))
            .version(env!("CARGO_PKG_VERSION"))
            .about($about)
    };
}

// A command line: one of the program's subcommands, or none.
#[derive(clap::Args)]
struct Cli<C: clap::Subcommand> {
    #[command(subcommand)]
    command: Option<C>,
}

/// Parses the command line as `program` (its name, version, about and help) with the
/// subcommands of `C`: the one given, or `None`.
pub fn parse_command<C: clap::Subcommand>(program: clap::Command) -> Option<C> {
    use clap::{Args as _, FromArgMatches as _};
    let matches = Cli::<C>::augment_args(program).get_matches();
    Cli::<C>::from_arg_matches(&matches)
        .unwrap_or_else(|err| err.exit())
        .command
}

/// `--help`'s list of settings: each variable and its default (the first reading of each, where
/// several programs' are listed together), then the subscriber's.
pub fn settings_help(settings: &[Setting]) -> String {
    let width = settings
        .iter()
        .map(|s| s.name.len())
        .chain(telemetry::SETTINGS.map(|(name, _)| name.len()))
        .max()
        .unwrap_or(0);
    let mut help = String::from(
        "Settings, from the environment (each explained in docs/API.md, \"Configuration\"):\n",
    );
    let subscriber = telemetry::SETTINGS.map(|(name, default)| Setting {
        name,
        default: default.to_owned(),
    });
    let mut listed = std::collections::HashSet::new();
    let first_readings = settings
        .iter()
        .filter(|setting| listed.insert(setting.name));
    for Setting { name, default } in first_readings.chain(&subscriber) {
        let default = if default.is_empty() { "none" } else { default };
        help.push_str(&format!("  {name:<width$}  [default: {default}]\n"));
    }
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
        shutdown: impl Stop,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// What tells a server to stop ([`Server::run_until_stopped`]): a future that resolves when
/// it should, which the server's task owns.
pub trait Stop: Future<Output = ()> + Send + 'static {}

impl<F: Future<Output = ()> + Send + 'static> Stop for F {}

/// A program's default command: builds `S` and serves until SIGTERM or Ctrl-C.
async fn serve<S: Server>(settings: S::Settings) -> Result<(), String> {
    let server = S::build(settings).await.map_err(|err| err.to_string())?;
    server
        .run_until_stopped(shutdown::signal())
        .await
        .map_err(|err| err.to_string())
}

/// Runs `command` as `program` with `settings`, the program's settings as read from the
/// environment, whose `LOG_FORMAT` picks the log subscriber's output; spans are exported as
/// `program`'s when the `OTEL_*` variables say so, and flushed when the command ends.
async fn run<Settings: FromEnv, Command>(
    program: &str,
    settings: Result<Settings, ConfigError>,
    command: impl FnOnce(Settings) -> Command,
) -> ExitCode
where
    Command: Future<Output = Result<(), String>>,
{
    let settings = match settings {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("{program}: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = telemetry::init_with_traces(settings.log_format(), program) {
        eprintln!("{program}: {err}");
        return ExitCode::FAILURE;
    }
    let outcome = command(settings).await;
    telemetry::shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{program}: {failure}");
            ExitCode::FAILURE
        }
    }
}
