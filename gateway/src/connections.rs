//! The accept loop and the life of each connection: the connection caps, a timer on every
//! connection while no request is being answered, and graceful shutdown. `axum::serve` has
//! none of these, so a client that sent half a request head, or simply opened connections,
//! kept each of them (and its memory and file descriptor) forever.
//!
//! A connection is always in one of three states ([`activity`]), and the state decides its
//! timer:
//!
//! - *head*: a request has begun (or the connection is new) and its head is still arriving;
//!   the whole head must be in within [`Limits::header_timeout`].
//! - *busy*: a request is being answered; the gateway's request timeout bounds that instead.
//! - *idle*: a keep-alive connection between requests, closed after [`Limits::idle_timeout`].
//!
//! Open connections are capped in all and per client address ([`slots`]). At a cap, the
//! connection idle the longest (the client's own, at its share) is closed to make room, so
//! idle keep-alive connections cannot lock anyone out; only when none is idle is the new
//! connection answered 503 and closed.
//!
//! hyper's own `header_read_timeout` is not used: it starts when the connection becomes ready
//! for the next request, so on a keep-alive connection it would count the idle wait as header
//! time and the two limits could not differ.
//!
//! Given a TLS acceptor (HTTPS), a connection's handshake must end within the header timeout,
//! and the protocol it agreed on (ALPN) decides HTTP/2 or HTTP/1.1 ([`served`]); an HTTP/2
//! connection is busy while any of its streams is being answered.

mod activity;
mod served;
mod slots;

pub(crate) use served::ALPN;

use std::{convert::Infallible, future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request},
    response::Response,
};
use hyper::body::Incoming;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch},
    time::Instant,
};
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt};

use self::{
    activity::{Activity, Answer, Watched},
    served::Served,
    slots::{Full, Slot, Slots},
};

/// What one gateway allows its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a request's head may take to arrive, from its first byte (or from accept, for
    /// a new connection's first request).
    pub header_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How many connections may be open at once. A new one past it takes the place of the
    /// connection idle the longest; with none idle, it is answered 503 and closed.
    pub max_connections: u32,
    /// How many of them one client address may hold, so that one client cannot take every
    /// place with connections that are never idle. A new one past it takes the place of that
    /// client's connection idle the longest; with none idle, it is answered 503 and closed.
    pub max_connections_per_client: u32,
}

/// What a client over a cap is told before the connection closes: the API's 503, written
/// by hand because no request has been read.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\ncontent-length: 62\r\nconnection: close\r\n\r\n\
{\"detail\":\"Service temporarily unavailable, try again later.\"}";

/// Serves `app` on `listener` (over TLS when given `tls`) until `shutdown` resolves; then stops
/// accepting, lets every connection finish the request it is answering, and returns when all
/// are closed.
pub async fn serve<S>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let slots = Arc::new(Slots::new(limits));
    let (stop, stopping) = watch::channel(());
    // Every connection holds a sender; when all have been dropped, all connections are closed.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let activity = Arc::new(Activity::new(limits));
        let slot = match slots.claim(peer.ip().to_canonical(), activity.clone()) {
            Ok(slot) => slot,
            Err(full) => {
                // Non-blocking and best effort: a client that cannot take 150 bytes now gets
                // only the close.
                let _ = stream.try_write(OVER_CAPACITY);
                let setting = match full {
                    Full::Gateway => "GATEWAY_MAX_CONNECTIONS",
                    Full::Client => "GATEWAY_MAX_CONNECTIONS_PER_CLIENT",
                };
                tracing::warn!(%peer, "connection refused: {setting} reached, none idle");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            Accepted {
                stream,
                peer,
                activity,
                slot,
                open: open.clone(),
            },
            tls.clone(),
            app.clone(),
            stopping.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(());
    drop(open);
    let _ = all_closed.recv().await;
}

/// A connection let in, with what it holds until it ends.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    activity: Arc<Activity>,
    /// Its place under the caps.
    slot: Slot,
    /// Tells [`serve`] the connection is still open, until dropped.
    open: mpsc::Sender<()>,
}

/// Waits after a failed accept that is not just one client giving up, so that running out of
/// file descriptors does not turn the loop into a busy spin.
async fn accept_failed(err: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        tracing::error!(%err, "accept failed");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Serves one connection until the client closes it, its timer runs out, its slot is given to
/// another, or shutdown has let its last request finish.
async fn connection<S>(
    accepted: Accepted,
    tls: Option<TlsAcceptor>,
    app: S,
    mut stopping: watch::Receiver<()>,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let Accepted {
        stream,
        peer,
        activity,
        slot: _slot,
        open: _open,
    } = accepted;
    let on_request = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let answering = on_request.begin();
        let mut request = request.map(Body::new);
        // What `into_make_service_with_connect_info` gave the handlers: throttling keys on it.
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await?;
            Ok::<_, Infallible>(response.map(|body| Answer {
                body,
                _answering: answering,
            }))
        }
    });
    let mut served = match tls {
        None => Served::http1(
            Watched {
                stream,
                activity: activity.clone(),
            },
            service,
        ),
        Some(tls) => {
            let deadline = activity.deadline();
            let handshake = tokio::select! {
                handshake = tls.accept(stream) => handshake,
                () = sleep_until(deadline) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            match handshake {
                Ok(stream) => Served::over_tls(
                    Watched {
                        stream,
                        activity: activity.clone(),
                    },
                    service,
                ),
                Err(err) => {
                    tracing::debug!(%peer, %err, "TLS handshake failed");
                    return;
                }
            }
        }
    };
    let mut draining = false;
    loop {
        // Checked here, where the socket is read, so no request can begin in between: hyper
        // closes the idle connection at once.
        if !draining && activity.is_evicted_and_idle() {
            tracing::debug!(%peer, "idle connection closed to make room for a new one");
            served.graceful_shutdown();
            draining = true;
        }
        let deadline = activity.deadline();
        tokio::select! {
            result = &mut served => {
                if let Err(err) = result {
                    tracing::debug!(%peer, %err, "connection ended with an error");
                }
                return;
            }
            () = sleep_until(deadline) => {
                if activity.deadline().is_some_and(|deadline| deadline <= Instant::now()) {
                    // Dropping the connection closes it, a half-read head included.
                    tracing::debug!(%peer, "connection timed out");
                    return;
                }
            }
            () = activity.changed.notified() => {}
            changed = stopping.changed(), if !draining => {
                // Closes an idle connection now, a busy one after its answer.
                let _ = changed;
                served.graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// Resolves at `deadline`, or never when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
