//! `cargo run --release`: the whole stack in one process, for trying it out and for development.
//! The auth service, the inventory service and the gateway start on their usual addresses
//! (`AUTH_LISTEN`, `INVENTORY_LISTEN`, `GATEWAY_LISTEN`, and every other variable of API.md
//! apply), their SQLite files in `DATA_DIR` (default `./data`); Ctrl-C stops all three. Each
//! service remains its own binary for real deployments.
//!
//! `cargo run --release -- createsuperuser --username NAME [--email ADDRESS]` creates the first
//! admin in the same database; `cargo run --release -- certs DIR` makes a CA and the services'
//! certificates for mutual TLS between the separate binaries.

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::ExitCode,
};

mod certs;

use auth_service::bootstrap::{CreateSuperuserArgs, createsuperuser_command};
use clap::Subcommand;
use service_kit::{
    program::{self, Server},
    shutdown, telemetry,
};
use tokio::sync::watch;

#[derive(Subcommand)]
enum Command {
    /// Make a CA (ca.pem) and a certificate and key for each service (auth-service.pem,
    /// auth-service.key, ...) in DIR, for mutual TLS between the services. Overwrites nothing.
    Certs {
        /// The folder to write them to (created if missing).
        dir: PathBuf,
    },
    /// Create a user with role ADMIN, is_staff and is_superuser in the stack's auth database.
    /// The password comes from AUTH_SUPERUSER_PASSWORD, else from standard input.
    Createsuperuser(CreateSuperuserArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    // Every setting of the three programs applies, and the launcher's own.
    let settings = service_kit::env::settings_read_by(|| {
        (
            service_kit::env::string_or("DATA_DIR", "data"),
            auth_service::Config::from_env(),
            inventory_service::Config::from_env(),
            gateway::Config::from_env(),
        )
    });
    let program = clap::Command::new("stack")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Runs the auth service, the inventory service and the gateway together")
        .after_help(program::settings_help(&settings));
    let outcome = match program::parse_command(program) {
        None => {
            let served = run().await;
            telemetry::shutdown();
            served
        }
        Some(Command::Certs { dir }) => certs::make(&dir).map(|files| {
            for file in files {
                println!("{}", file.display());
            }
        }),
        Some(Command::Createsuperuser(args)) => {
            match data_dir().and_then(|data| auth_config(&data)) {
                Ok(config) => createsuperuser_command(&config, &args).await,
                Err(message) => Err(message),
            }
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("stack: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `DATA_DIR`, created if missing.
fn data_dir() -> Result<PathBuf, String> {
    let dir = PathBuf::from(service_kit::env::string_or("DATA_DIR", "data"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The variable's URL if set, else a SQLite file in the data folder.
fn database_url(variable: &str, data: &Path, file: &str) -> String {
    match std::env::var(variable) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => format!("sqlite://{}", data.join(file).display()),
    }
}

fn auth_config(data: &Path) -> Result<auth_service::Config, String> {
    let mut config = auth_service::Config::from_env().map_err(|e| e.to_string())?;
    config.database_url = database_url("AUTH_DATABASE_URL", data, "auth.db").into();
    Ok(config)
}

async fn run() -> Result<(), String> {
    let data = data_dir()?;
    let auth = auth_config(&data)?;
    let mut inventory = inventory_service::Config::from_env().map_err(|e| e.to_string())?;
    let mut gateway = gateway::Config::from_env().map_err(|e| e.to_string())?;
    telemetry::init_with_traces(auth.log_format, "stack").map_err(|e| e.to_string())?;
    // The gateway's `/metrics` renders the process's one recorder: installed before any
    // service is built, so that the caches, pools and hashing queue of all three record in it.
    service_kit::metrics::install();
    inventory.database_url = database_url("INVENTORY_DATABASE_URL", &data, "inventory.db").into();
    // One process has one metrics recorder: auth's `METRICS_LISTEN` serves every series, and
    // inventory binding the same address would fail.
    inventory.metrics_listen = None;

    let auth = auth_service::Application::build(auth)
        .await
        .map_err(|e| format!("auth service: {e}"))?;
    let auth_url = format!("http://{}", auth.local_addr());
    // Unless told otherwise, the other two find auth (and the gateway finds inventory) where
    // they really listen, so overriding one *_LISTEN is enough.
    if std::env::var_os("AUTH_URL").is_none() {
        inventory.auth_url = auth_url.parse().map_err(|e| format!("{auth_url}: {e}"))?;
        gateway.auth_url = inventory.auth_url.clone();
    }
    let inventory = inventory_service::Application::build(inventory)
        .await
        .map_err(|e| format!("inventory service: {e}"))?;
    if std::env::var_os("INVENTORY_URL").is_none() {
        let url = format!("http://{}", inventory.local_addr());
        gateway.inventory_url = url.parse().map_err(|e| format!("{url}: {e}"))?;
    }
    let gateway = gateway::Application::build(gateway)
        .await
        .map_err(|e| format!("gateway: {e}"))?;

    println!("auth service (gRPC)       {auth_url}");
    println!(
        "inventory service (gRPC)  http://{}",
        inventory.local_addr()
    );
    println!("gateway (HTTP)            http://{}", gateway.local_addr());
    println!("data                      {}", data.display());
    println!();
    println!(
        "Create the first admin:   cargo run --release -- createsuperuser --username admin --email admin@example.com"
    );
    println!("Stop:                     Ctrl-C");

    let (stop, stopped) = watch::channel(());
    let signal = |mut stopped: watch::Receiver<()>| async move {
        let _ = stopped.changed().await;
    };
    let servers = async {
        tokio::try_join!(
            flatten(
                "auth service",
                auth.run_until_stopped(signal(stopped.clone()))
            ),
            flatten(
                "inventory service",
                inventory.run_until_stopped(signal(stopped.clone()))
            ),
            flatten(
                "gateway",
                gateway.run_until_stopped(signal(stopped.clone()))
            ),
        )
    };
    tokio::pin!(servers);
    tokio::select! {
        result = &mut servers => result.map(|_| ()),
        () = shutdown::signal() => {
            let _ = stop.send(());
            servers.await.map(|_| ())
        }
    }
}

async fn flatten<E: std::fmt::Display>(
    name: &str,
    server: impl Future<Output = Result<(), E>>,
) -> Result<(), String> {
    server.await.map_err(|e| format!("{name}: {e}"))
}
