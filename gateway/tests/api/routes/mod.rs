//! The gateway's route tests, on `fake_upstream`'s fake in place of the services: what the
//! gateway itself decides, whatever the services store. No database is involved, so `.ci/run`
//! runs these once, not again on PostgreSQL.
//!
//! - `errors`: each gRPC status a service answers, as DRF's status, body and headers.
//! - `refusals`: the gateway's own 400, 401, 404, 405, 413 and 415, no service asked.
//! - `shapes`: the bodies of a product, a page of products and a user, and what each route sent.
//! - `document`: `/api/schema/`'s schemas typed, every answer conforming to them, and the docs
//!   page served from the binary (`conformance` reads the document as a client does).
//! - `operations`: schema, health, readiness, metrics, request ids, trailing slashes, form
//!   bodies, paging and `ALLOWED_HOSTS`.
//! - `faults`: 503 and 504 when a service is down or silent, saying only their fixed detail.
//! - `proxies`: the client and the scheme behind trusted proxies (throttle, lockout address,
//!   `Secure` cookies, links), and the probes that answer any `Host`.
//! - `cors`: CORS for listed origins only, preflights answered before any route.
//! - `https`: HTTPS (HTTP/1.1 and HTTP/2) with curl, and the probe over it.
//! - `nginx`: the login throttle behind a real nginx, one bucket per client.
//! - `sessions`: who may open a cookie session, an exact CSRF match, `Secure` cookies.
//! - `throttling`: the per-IP limit on the routes that check a password.
//! - `connections`: header, idle and request timeouts and the connection caps (the idlest
//!   connection making room, never a busy one), over raw sockets.

mod conformance;
mod connections;
mod cors;
mod document;
mod errors;
mod faults;
mod https;
mod nginx;
mod operations;
mod proxies;
mod refusals;
mod sessions;
mod shapes;
mod throttling;
