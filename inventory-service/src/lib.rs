//! The inventory service: products and their stock over gRPC (`inventory.v1.InventoryService`),
//! every call checked with the auth service first.
//!
//! - `config`: settings from the environment.
//! - `server`: `Application` opens (and migrates) the database, binds, mounts, serves, and
//!   hands over on SIGTERM.
//! - `authentication`: the tower layer that requires every caller to be authenticated by the
//!   auth service (any of its replicas), and the watch on auth's health.
//! - `grpc`: the RPC handlers, thin proto ↔ domain translation plus authorization.
//! - `domain`: validated product types (name, price in cents, quantity) with DRF's messages.
//! - `cache`: the copy of the product table reads are answered from, kept exact across
//!   replicas as the verdict caches are.
//! - `store`: all SQL, for SQLite and PostgreSQL alike.
//! - `error`: the service's one error enum and its mapping to gRPC statuses.
//! - `import`: `import-django`, products from a Django `dumpdata`.
//!
//! Public are the modules another crate uses (the binary, the tests, the bench's in-process
//! baseline), as in auth; the rest is the service's own.

mod authentication;
pub mod cache;
pub mod config;
mod domain;
mod error;
pub mod grpc;
pub mod import;
pub mod server;
pub mod store;

pub use config::Config;
pub use server::{Application, StartupError};
