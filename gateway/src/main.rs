//! The `gateway` binary: configuration from the environment, telemetry, then serve until SIGTERM.
//! `gateway healthcheck` exits 0 when the gateway at `GATEWAY_LISTEN` answers `/healthz`.

use std::process::ExitCode;

use gateway::{Application, Config, server::probe_health};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("gateway: {err}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
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
