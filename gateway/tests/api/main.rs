//! The gateway's integration tests: each test starts the real auth and inventory services (each
//! on a database of its own) and the gateway, all on port 0, and talks HTTP to the gateway. The
//! databases are SQLite files, or PostgreSQL databases with `TEST_BACKEND=postgres`
//! (`.ci/run` runs the storage-dependent modules both ways).
//!
//! - `helpers`: `spawn_stack()` and the client-side conveniences.
//! - `seeds`: every example request of the five documents, replayed as written.
//! - `errors`: one test per row of API.md's error tables.
//! - `faults`: 500, 503 and 504 say only their fixed detail.
//! - `sessions`: the cookie session, its CSRF check, and the origin check on opening one.
//! - `throttling`: per-IP limits and the account lockout.
//! - `connections`: header, idle and request timeouts and the connection caps (the idlest
//!   connection making room, never a busy one), over raw sockets.
//! - `operations`: schema, health, readiness, metrics, request ids.
//! - `fuzz`: arbitrary JSON to every JSON route never gets a 5xx.
//! - `lists`: lists larger than one gRPC reply, read page by page.
//! - `logs`: no password or key in any service's log, even at TRACE.
//! - `django`: users and DRF tokens imported from a Django `dumpdata` work unchanged.
//! - `idempotency`: `Idempotency-Key` on the product writes: repeats answered, reuse a 422.
//! - `verdict_cache`: every withdrawing write is refused at once by the warmed caches of
//!   inventory and the gateway, 100 rounds each.
//! - `product_cache`: every product write is read back at once through the gateway, however
//!   warm inventory's copy of the table, 100 rounds.
//! - `processes`: replicas as processes of their own (this binary started again), to be killed.
//! - `replicas`: two replicas of each service behind one gateway: reads spread, and none fails
//!   when a replica is killed or leaves on SIGTERM (PostgreSQL only).

mod connections;
mod django;
mod errors;
mod faults;
mod fuzz;
mod helpers;
mod idempotency;
mod lists;
mod logs;
mod operations;
mod processes;
mod product_cache;
mod replicas;
mod seeds;
mod sessions;
mod throttling;
mod verdict_cache;
