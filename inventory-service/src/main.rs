//! `inventory-service`: reads its settings from the environment and serves until SIGTERM or
//! Ctrl-C; `inventory-service healthcheck` asks a running server whether it is SERVING;
//! `inventory-service import-django FILE` moves products in from Django.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use inventory_service::{
    Application, Config,
    import::{ImportDjangoArgs, import_django_command},
    server::SERVICE_NAME,
};
use service_kit::{env, grpc, program};

/// The inventory gRPC service. Every setting comes from the environment (see README.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 if the server at INVENTORY_LISTEN answers SERVING (for container health checks);
    /// it does not while auth is unreachable.
    Healthcheck,
    /// Import products (ids and prices kept) from the JSON of Django's `manage.py dumpdata`,
    /// in one transaction.
    ImportDjango(ImportDjangoArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = program::parse_cli(&env::settings_read_by(Config::from_env));
    let log_format = |config: &Config| config.log_format;
    program::run(
        "inventory-service",
        Config::from_env(),
        log_format,
        |config| async move {
            match cli.command {
                None => program::serve::<Application>(config).await,
                Some(Command::Healthcheck) => grpc::probe_health(config.listen, SERVICE_NAME).await,
                Some(Command::ImportDjango(args)) => import_django_command(&config, &args).await,
            }
        },
    )
    .await
}
