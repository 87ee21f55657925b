//! The auth service: users, roles and the credential lifecycle (issue, validate, refresh,
//! revoke) over gRPC (`auth.v1.AuthService`), stored with sqlx on SQLite or PostgreSQL.
//!
//! - `config`: settings from the environment.
//! - `server`: `Application`, a `service_kit::program::Server`: opens the database, binds,
//!   mounts the service with health and reflection, runs until shutdown.
//! - `grpc`: the handlers and caller authentication; `grpc::parse` turns requests into domain
//!   types, `grpc::convert` turns domain types into messages.
//! - `service`: what the service does, as `Accounts`: tokens, login and lockout, users.
//! - `domain`: validated types (usernames, passwords, token keys), the roles' table, a user's
//!   `Profile`, the caller, `Principal`, and the audit trail's events (`domain::audit`).
//! - `store`: all SQL; `store::audit::record` writes an audit event in the transaction of the
//!   change it records.
//! - `hashing`: argon2id on a bounded pool of low-priority threads.
//! - `revocations`: the verdict-cache holders' hub: leases, events, acknowledgements.
//! - `mail`: the outbox of messages written with their cause, and the sender that delivers
//!   them over SMTP (`EMAIL_URL`).
//! - `metrics`: auth's own Prometheus series (logins, lockouts, hashing, holders, purge).
//! - `totp`: RFC 6238 codes and the shared secret they come from.
//! - `clock`: time as a parameter.
//! - `error`: the one error type and its mapping to `tonic::Status`.
//! - `bootstrap`: `createsuperuser`.
//! - `import`: `import-django`, users and DRF tokens from a Django `dumpdata`, which `dump`
//!   checks into domain values for the store.

pub mod bootstrap;
pub mod clock;
pub mod config;
mod domain;
mod dump;
mod error;
mod grpc;
mod hashing;
pub mod import;
pub mod mail;
mod metrics;
mod revocations;
pub mod server;
mod service;
mod store;
pub mod totp;

pub use bootstrap::create_superuser;
pub use config::Config;
pub use server::{Application, StartupError};
