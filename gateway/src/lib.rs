//! The REST gateway: serves the Django-REST-Framework-compatible HTTP API of `docs/API.md` and
//! translates every request into gRPC calls on the auth and inventory services. It holds no data
//! of its own; everything it knows about a user or a product comes from a service.
//!
//! Layout:
//!
//! - [`config`]: the settings, read from the environment and checked before any socket opens.
//! - [`server`]: binds the listener, assembles the middleware and serves until shutdown.
//! - [`request_log`]: the request id every request carries, and one log line per request.
//! - [`forwarded`]: the client's address and scheme behind trusted proxies (`TRUSTED_PROXIES`,
//!   `NUM_PROXIES`), worked out once per request for the throttle, the lockout, the logs and
//!   the cookies.
//! - [`cors`]: `CORS_ALLOWED_ORIGINS`, the other origins whose pages may call the API.
//! - [`connections`]: the accept loop: the connection caps (in all and per client address, the
//!   idlest connection making room), header and idle timers, draining.
//! - [`routes`]: the routes, one module per resource: what each reads from a request and asks
//!   of which service.
//! - [`shapes`]: the JSON bodies the routes answer with (a product list's is written once per
//!   distinct reply of inventory's, and looked up by it).
//! - [`extract`]: request bodies (JSON or form), the caller's credential, path ids.
//! - [`session`]: the `sessionid` and `csrftoken` cookies and the CSRF double-submit check.
//! - [`clients`]: the long-lived gRPC channels to every replica of both services and the metadata
//!   every call carries.
//! - [`error`]: the one error type, and the one table from gRPC status to HTTP status and DRF body.
//! - [`hosts`]: `ALLOWED_HOSTS`, the `Host` names the API answers for (the probes answer any).
//! - [`origins`]: `CSRF_TRUSTED_ORIGINS` and Django's origin check on the routes that open a
//!   session.
//! - [`throttle`]: per-client rate limits on login and registration.
//! - [`metrics`]: request counts and latency histograms, into the process's Prometheus recorder.
//! - [`openapi`]: the OpenAPI 3 document served at `/api/schema/` (and shown at `/api/docs/`).

pub mod clients;
pub mod config;
pub mod connections;
pub mod cors;
pub mod error;
pub mod extract;
pub mod forwarded;
pub mod hosts;
pub mod metrics;
pub mod openapi;
pub mod origins;
pub mod request_log;
pub mod routes;
pub mod server;
pub mod session;
pub mod shapes;
pub mod throttle;

pub use config::Config;
pub use server::{Application, StartupError};
