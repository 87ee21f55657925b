//! Integration tests of the auth service: the real server on a free port, over real sockets, on
//! a database of its own per test (SQLite, and PostgreSQL when `TEST_POSTGRES_URL` is set).

mod helpers;

mod accounts;
mod audit;
mod audit_accounts;
mod audit_reading;
mod database_tls;
mod feed;
mod frontends;
mod grpc_tls;
mod hardening;
mod idempotency;
mod identities;
mod import;
mod import_collisions;
mod lockout;
mod login;
mod mail_tls;
mod metrics;
mod mfa_login;
mod recovery;
mod replicas;
mod second_factor;
mod secrets;
mod server;
mod timing;
mod tokens;
