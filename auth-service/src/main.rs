//! `auth-service`: serves `auth.v1.AuthService`; `auth-service createsuperuser` creates the
//! first admin; `auth-service import-django FILE` moves users and tokens in from Django.
//! Settings come from the environment (see `Config`).

use std::process::ExitCode;

use auth_service::{
    Application, Config,
    bootstrap::{CreateSuperuserArgs, createsuperuser_command},
    import::{ImportDjangoArgs, import_django_command},
};
use clap::Subcommand;
use proto::auth::v1::auth_service_server::AuthServiceServer;
use service_kit::{grpc, program};
use tonic::server::NamedService;

#[derive(Subcommand)]
enum Command {
    /// Create a user with role ADMIN, is_staff and is_superuser. The password comes from
    /// AUTH_SUPERUSER_PASSWORD, else from the first line of standard input.
    Createsuperuser(CreateSuperuserArgs),
    /// Exit 0 if the server at AUTH_LISTEN answers SERVING (for container health checks).
    Healthcheck,
    /// Import users, their password hashes and DRF tokens from the JSON of Django's
    /// `manage.py dumpdata auth.user authtoken.token`, in one transaction.
    ImportDjango(ImportDjangoArgs),
}

/// Runs a subcommand, with the settings read.
async fn run(command: Command, config: Config) -> Result<(), String> {
    match command {
        Command::Createsuperuser(args) => createsuperuser_command(&config, &args).await,
        Command::ImportDjango(args) => import_django_command(&config, &args).await,
        Command::Healthcheck => {
            let service = AuthServiceServer::<()>::NAME;
            grpc::probe_health(config.listen, service, config.tls.as_ref()).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let program = service_kit::program!("Users, roles and tokens over gRPC");
    program::main::<Application, _, _>(program, run).await
}
