//! End-to-end tests: the real auth service and the real inventory service, each on its own
//! database and a port-0 socket, talked to over gRPC like any client would. Every test runs on
//! SQLite and on PostgreSQL (when `TEST_POSTGRES_URL` is set), except `fuzz`, which fuzzes
//! every RPC of both services on SQLite.

mod authentication;
mod fuzz;
mod helpers;
mod idempotency;
mod import;
mod limits;
mod permissions;
mod product_cache;
mod products;
mod stock;
mod transport;
mod verdict_cache;
