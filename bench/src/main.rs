//! `cargo run --release -p bench [-- SCENARIO...]`: starts the real services in-process on free
//! ports and measures them over loopback sockets, printing figures. The load generator shares
//! the machine with the servers, so compare figures of one run with each other (ratios), not
//! across machines.
//!
//! Scenarios: `auth` (login latency with the default argon2 parameters, ValidateToken calls per
//! second), `inventory` (GetProduct calls per second with and without the auth layer). With `TEST_POSTGRES_URL` set, database-bound scenarios also run on PostgreSQL.

mod auth;
mod inventory;
mod load;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let scenarios: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |name: &str| scenarios.is_empty() || scenarios.iter().any(|s| s == name);
    let mut ran = false;
    if wanted("auth") {
        auth::run().await;
        ran = true;
    }
    if wanted("inventory") {
        inventory::run().await;
        ran = true;
    }
    if ran {
        ExitCode::SUCCESS
    } else {
        eprintln!("unknown scenario; known: auth, inventory");
        ExitCode::FAILURE
    }
}
