//! The `gateway` binary: configuration from the environment, telemetry, then serve until SIGTERM.
//! `gateway healthcheck` exits 0 when the gateway at `GATEWAY_LISTEN` answers `/healthz`.

use std::process::ExitCode;

use clap::Subcommand;
use gateway::{Application, Config, server::probe_health};
use service_kit::program;

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 if the gateway at GATEWAY_LISTEN answers /healthz (for container health checks).
    Healthcheck,
}

/// Runs a subcommand, with the settings read.
async fn run(command: Command, config: Config) -> Result<(), String> {
    match command {
        Command::Healthcheck => {
            probe_health(
                config.listen,
                config.allowed_hosts.an_allowed_host(),
                config.tls.as_ref(),
            )
            .await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let program = service_kit::program!(
        "The REST gateway in front of the auth and inventory services. Every setting comes \
         from the environment (see README.md)"
    );
    program::main::<Application, _, _>(program, run).await
}
