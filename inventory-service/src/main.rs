//! `inventory-service`: reads its settings from the environment and serves until SIGTERM or
//! Ctrl-C; `inventory-service healthcheck` asks a running server whether it is SERVING;
//! `inventory-service import-django FILE` moves products in from Django.

use std::process::ExitCode;

use clap::Subcommand;
use inventory_service::{
    Application, Config,
    import::{ImportDjangoArgs, import_django_command},
    server::SERVICE_NAME,
};
use service_kit::{grpc, program};

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 if the server at INVENTORY_LISTEN answers SERVING (for container health checks);
    /// it does not while auth is unreachable.
    Healthcheck,
    /// Import products (ids and prices kept) from the JSON of Django's `manage.py dumpdata`,
    /// in one transaction.
    ImportDjango(ImportDjangoArgs),
}

/// Runs a subcommand, with the settings read.
async fn run(command: Command, config: Config) -> Result<(), String> {
    match command {
        Command::Healthcheck => {
            grpc::probe_health(config.listen, SERVICE_NAME, config.tls.as_ref()).await
        }
        Command::ImportDjango(args) => import_django_command(&config, &args).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let program = service_kit::program!(
        "The inventory gRPC service. Every setting comes from the environment (see README.md)"
    );
    program::main::<Application, _, _>(program, run).await
}
