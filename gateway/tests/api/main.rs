//! The gateway's integration tests, all servers on port 0, talking HTTP to the gateway. Two kinds:
//!
//! - `routes`: the route tests. The gateway stands in front of `fake_upstream`, a scripted fake
//!   of both services: what the gateway itself decides (error mapping, shapes, paging, headers,
//!   connections), with no database.
//! - every other module: the full stack. Each test starts the real auth and inventory services
//!   (each on a database of its own) and the gateway, for what the services' behaviour takes
//!   part in. The databases are SQLite files, or PostgreSQL databases with
//!   `TEST_BACKEND=postgres` (`.ci/run` runs the storage-dependent modules both ways).
//!
//! - `helpers`: `spawn_stack()`, `spawn_gateway()` (either kind's) and the client-side
//!   conveniences.
//! - `fake_upstream`: the fake and `spawn_fake()`.
//! - `seeds`: every example request of the five documents, replayed as written.
//! - `errors`: the error rows the services' behaviour decides (field errors, expiry, stock).
//! - `faults`: a broken database's 500 says only its fixed detail; readiness by service name.
//! - `sessions`: the cookie session, its CSRF double-submit, and logout revoking it.
//! - `throttling`: the account lockout.
//! - `second_factor`: TOTP enrolment, logins completed by a code per route, disabling, resets.
//! - `fuzz`: arbitrary JSON to every JSON route never gets a 5xx.
//! - `lists`: lists larger than one gRPC reply, read page by page.
//! - `audit`: `/api/audit/`, the auth service's audit trail, for superusers only.
//! - `logs`: no password or key in any service's log, even at TRACE.
//! - `django`: users and DRF tokens imported from a Django `dumpdata` work unchanged.
//! - `idempotency`: `Idempotency-Key` on the product writes: repeats answered, reuse a 422.
//! - `verdict_cache`: every withdrawing write is refused at once by the warmed caches of
//!   inventory and the gateway, 100 rounds each.
//! - `product_cache`: every product write is read back at once through the gateway, however
//!   warm inventory's copy of the table, 100 rounds.
//! - `processes`: replicas as processes of their own (this binary started again), to be killed.
//! - `recovery`: password reset and e-mail verification through a real SMTP server.
//! - `replicas`: two replicas of each service behind one gateway: reads spread, and none fails
//!   when a replica is killed or leaves on SIGTERM (PostgreSQL only).

mod audit;
mod django;
mod errors;
mod fake_upstream;
mod faults;
mod fuzz;
mod helpers;
mod hops;
mod idempotency;
mod lists;
mod logs;
mod otlp;
mod processes;
mod product_cache;
mod prometheus;
mod recovery;
mod replicas;
mod routes;
mod second_factor;
mod seeds;
mod sessions;
mod telemetry;
mod throttling;
mod transport;
mod verdict_cache;
