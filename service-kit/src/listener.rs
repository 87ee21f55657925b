//! The socket every server (gRPC or HTTP) listens on, bound one way, with one start-up error.

use std::{io, net::SocketAddr};

use tokio::net::TcpListener;

/// The address could not be listened on (in use, not local, not permitted).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {source}")]
pub struct BindError {
    pub address: SocketAddr,
    #[source]
    pub source: io::Error,
}

/// Listens on `address` (port 0 picks a free one); the listener and the address it got.
pub async fn bind(address: SocketAddr) -> Result<(TcpListener, SocketAddr), BindError> {
    let refused = |source| BindError { address, source };
    let listener = TcpListener::bind(address).await.map_err(refused)?;
    let local_addr = listener.local_addr().map_err(refused)?;
    Ok((listener, local_addr))
}
