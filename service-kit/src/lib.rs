//! What every gRPC service of the workspace shares, so that each service holds only its own
//! domain:
//!
//! - the allocator: every program that links this crate (the services, the launcher, the
//!   bench and its baselines, the tests) allocates with jemalloc.
//! - `env`: typed settings read from the environment, with clear start-up errors.
//! - `telemetry`: the tracing subscriber (`LOG_FORMAT`, `RUST_LOG`).
//! - `request_id`: the tower layer that puts `x-request-id` on every log line of a call.
//! - `database`: one `sqlx::AnyPool` for SQLite or PostgreSQL, migrated at start.
//! - `feed`: on PostgreSQL, the changes every replica's writes make, announced by the database
//!   with their commit and passed on by each replica to the caches it keeps exact.
//! - `idempotency`: writes keyed by `idempotency-key` metadata, applied once, answered again.
//! - `django`: reading Django's `dumpdata` JSON, for the `import-django` commands.
//! - `listener`: binding the port a server listens on.
//! - `metrics`: Prometheus metrics (`METRICS_LISTEN`), every gRPC call counted and timed.
//! - `program`: every binary's `main`, and `Server`, the life cycle every service's
//!   `Application` has (build from settings, serve until stopped).
//! - `grpc`: reflection (v1 and v1alpha) and health, the parts every server mounts; the serve
//!   loop with the `GRPC_*` limits on every caller; `Bound`, a server ready to serve and to
//!   hand over; and the start-up errors of every gRPC service.
//! - `tls`: TLS on the gRPC hops: what a server serves with, what a client trusts and presents.
//! - `time`: unix microseconds, the time every table stores.
//! - `validation`: field errors, carried as `google.rpc.BadRequest`.
//! - `shutdown`: the SIGTERM / Ctrl-C future that drains a server.
//! - `upstream`: the replicas of a service a client calls: found by name, watched over health,
//!   balanced, and a failed call sent again to another when that is safe.
//! - `verdicts`: the verdict cache that spares a `ValidateToken` round trip per call, kept
//!   exact by auth's `WatchRevocations` leases.

/// glibc's malloc took about half of the gateway's CPU on the hot path (per-arena locks taken
/// when a task frees on another thread what it allocated on one, and the consolidation of
/// freed chunks whenever a growing buffer asks for a larger one); jemalloc's per-thread caches
/// and size classes avoid both (BENCHMARKS.md, "The allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub mod database;
pub mod django;
pub mod env;
pub mod feed;
pub mod grpc;
pub mod idempotency;
pub mod listener;
pub mod metrics;
pub mod program;
pub mod request_id;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod tls;
pub mod upstream;
pub mod validation;
pub mod verdicts;
