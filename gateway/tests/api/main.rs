//! The gateway's integration tests: each test starts the real auth and inventory services (each
//! on its own SQLite database) and the gateway, all on port 0, and talks HTTP to the gateway.
//!
//! - `helpers`: `spawn_stack()` and the client-side conveniences.
//! - `seeds`: every example request of the five documents, replayed as written.
//! - `errors`: one test per row of API.md's error tables.
//! - `sessions`: the cookie session and its CSRF check.
//! - `throttling`: per-IP limits and the account lockout.
//! - `connections`: header, idle and request timeouts and the connection cap, over raw sockets.
//! - `operations`: schema, health, readiness, metrics, request ids.
//! - `fuzz`: arbitrary JSON to every JSON route never gets a 5xx.
//! - `lists`: lists larger than one gRPC reply, read page by page.
//! - `django`: users and DRF tokens imported from a Django `dumpdata` work unchanged.

mod connections;
mod django;
mod errors;
mod fuzz;
mod helpers;
mod lists;
mod operations;
mod seeds;
mod sessions;
mod throttling;
