//! [`StartupError`]: what stops a gRPC service of the workspace from starting or serving.

use crate::{
    database::{ClaimError, DatabaseError},
    feed::FeedError,
    listener::BindError,
};

/// Why a gRPC service could not start, or stopped serving: the parts every service shares
/// (its database, its claim on a SQLite file, the change feed, the port, reflection, the
/// serve loop), or what only the service itself sets up, in its own words.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Claim(#[from] ClaimError),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot set up server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// What the service itself sets up failed (auth's password hashing).
    #[error("{0}")]
    Service(String),
}
