//! The `gateway` binary: configuration from the environment, telemetry, then serve until SIGTERM.
//! `gateway healthcheck` exits 0 when the gateway at `GATEWAY_LISTEN` answers `/healthz`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gateway::{Application, Config, server::probe_health};
use service_kit::{env, program};

/// The REST gateway in front of the auth and inventory services. Every setting comes from the
/// environment (see README.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 if the gateway at GATEWAY_LISTEN answers /healthz (for container health checks).
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = program::parse_cli(&env::settings_read_by(Config::from_env));
    let log_format = |config: &Config| config.log_format;
    program::run(
        "gateway",
        Config::from_env(),
        log_format,
        |config| async move {
            match cli.command {
                None => program::serve::<Application>(config).await,
                Some(Command::Healthcheck) => {
                    probe_health(config.listen, config.allowed_hosts.an_allowed_host()).await
                }
            }
        },
    )
    .await
}
