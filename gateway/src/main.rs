//! The `gateway` binary: configuration from the environment, telemetry, then serve until SIGTERM.
//! `gateway healthcheck` exits 0 when the gateway at `GATEWAY_LISTEN` answers `/healthz`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gateway::{Application, Config, server::probe_health};

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
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("gateway: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Healthcheck) = cli.command {
        return match probe_health(config.listen, config.allowed_hosts.an_allowed_host()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("gateway: {err}");
                ExitCode::FAILURE
            }
        };
    }
    service_kit::telemetry::init(config.log_format);
    let result = match Application::build(config).await {
        Ok(app) => {
            tracing::info!(address = %app.local_addr(), "gateway listening");
            app.run_until_stopped(service_kit::shutdown::signal()).await
        }
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "gateway stopped");
            eprintln!("gateway: {err}");
            ExitCode::FAILURE
        }
    }
}
