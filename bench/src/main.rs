//! `cargo run --release -p bench [-- SCENARIO...]`: measures the release binaries against the
//! limit in one run. It builds and starts `auth-service`, `inventory-service` and `gateway` as
//! child processes on free ports (SQLite files in a temporary folder; with
//! `BENCH_POSTGRES_URL` or `TEST_POSTGRES_URL`, fresh PostgreSQL databases, dropped after),
//! seeds them, starts trivial axum and tonic servers as baselines, drives HTTP with wrk and gRPC
//! with h2load (the bench's own generator where they are missing, or where a load cannot be
//! given to them), and prints for each scenario requests per second, p50, p99, failed requests,
//! the services' peak RSS, and at the end one table of every figure beside its baseline and
//! target. It exits non-zero when any request failed, never on a slow figure. The generators
//! share the machine with the servers: compare the figures of one run with each other (the
//! ratios), not across machines.
//!
//! Scenarios (all by default):
//! - `gateway`: 1. authenticated `GET /api/inventory/` through the gateway vs axum and the
//!   two-hop floor, and the bench's own generator vs wrk on axum;
//! - `validate`: 2. `ValidateToken` vs an empty tonic unary call;
//! - `inventory`: 3. `GetProduct` through the auth layer vs the same handlers without it;
//! - `storm`: 4. a login storm under fixed-rate `GET /api/me/` vs raw argon2id;
//! - `scale`: 5. `ValidateToken` with 1,000,000 users and 2,000,000 tokens (PostgreSQL only);
//! - `mixed`: 6. reads, adjust-stock and logins at once, per class;
//! - `writes`: 7. adjust-stock and product creation vs the database's own commits;
//! - `observed`: 8. the list with metrics exported, then every span too, vs as shipped.
//!
//! Layout: `process` (the binaries and their memory), `database` (a run's databases), `stack`
//! (the seeded services), `baseline` and `floor` (the limits), `commits` (the database's),
//! `load` (the bench's own generator and its records), `http` and `grpc` (requests as the
//! bench and the tools make them), `tools` (wrk and h2load), `drive` (which of them drives a
//! load), `report` (what is printed), then one module per scenario.

mod baseline;
mod commits;
mod database;
mod drive;
mod floor;
mod gateway;
mod grpc;
mod http;
mod load;
mod mixed;
mod observed;
mod process;
mod report;
mod scale;
mod stack;
mod storm;
mod tools;
mod unary;
mod writes;

use std::process::ExitCode;

use database::{Backend, POSTGRES_URL_VARS};
use process::{Binaries, mib};
use report::Report;
use stack::Stack;
use tools::Tools;

const SCENARIOS: [&str; 8] = [
    "gateway",
    "validate",
    "inventory",
    "storm",
    "scale",
    "mixed",
    "writes",
    "observed",
];
/// The scenarios run on the seeded stack (all but `scale`).
const ON_THE_STACK: [&str; 7] = [
    "gateway",
    "validate",
    "inventory",
    "storm",
    "writes",
    "mixed",
    "observed",
];

#[tokio::main]
async fn main() -> ExitCode {
    let asked: Vec<String> = std::env::args().skip(1).collect();
    if let Some(unknown) = asked
        .iter()
        .find(|name| !SCENARIOS.contains(&name.as_str()))
    {
        eprintln!(
            "bench: unknown scenario {unknown:?}; known: {}",
            SCENARIOS.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let wanted = |name: &str| asked.is_empty() || asked.iter().any(|asked| asked == name);
    match run(&wanted).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failed) => {
            eprintln!("bench: {failed} requests failed, so these figures are no measure");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the wanted scenarios; the number of failed requests.
async fn run(wanted: &dyn Fn(&str) -> bool) -> Result<u64, String> {
    let binaries = Binaries::build_and_locate()?;
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().map_err(|e| format!("no temporary folder: {e}"))?;
    let tools = Tools::find();
    println!(
        "bench on {}: {} CPUs ({}), HASHING_CONCURRENCY={}",
        backend.name(),
        std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model(),
        stack::hashing_concurrency()
    );
    println!("{}", tools.describe());
    let mut report = Report::new(backend.name());

    if ON_THE_STACK.iter().any(|name| wanted(name)) {
        let stack = Stack::start(&binaries, &backend, dir.path()).await?;
        let rss = |of: fn(&process::Service) -> u64| {
            let line: Vec<String> = stack
                .services()
                .iter()
                .map(|service| format!("{} {}", service.name, mib(of(service))))
                .collect();
            line.join(", ")
        };
        println!("RSS right after start: {}", rss(|s| s.idle.rss_kib));
        println!("RSS after seeding: {}", rss(|s| s.memory().rss_kib));
        let baselines = baseline::start(&stack)?;
        if wanted("gateway") {
            gateway::run(&stack, &baselines, &tools, &mut report).await?;
        }
        if wanted("validate") || wanted("inventory") {
            let printed = unary::Wanted {
                validate: wanted("validate"),
                inventory: wanted("inventory"),
            };
            unary::run(&stack, &baselines, &tools, printed, &mut report).await?;
        }
        if wanted("storm") {
            storm::run(&stack, &mut report).await;
        }
        if wanted("mixed") {
            mixed::run(&stack, &mut report).await;
        }
        if wanted("observed") {
            observed::run(&binaries, &backend, dir.path(), &stack, &tools, &mut report).await?;
        }
        // Writes last: each product they create lengthens the list the others read.
        if wanted("writes") {
            writes::run(&stack, &backend, &tools, &mut report).await?;
        }
    }

    if wanted("scale") {
        match backend {
            Backend::Postgres { .. } => {
                scale::run(&binaries, &backend, dir.path(), &mut report).await?
            }
            Backend::Sqlite => println!(
                "\n== 5. skipped: 1,000,000 users need PostgreSQL; set {} to run it",
                POSTGRES_URL_VARS.join(" or ")
            ),
        }
    }
    Ok(report.finish())
}

/// The CPU's model name, as `/proc/cpuinfo` gives it.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}
