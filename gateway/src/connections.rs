//! The accept loop and the life of each connection: at most [`Limits::max_connections`] open at
//! once, a timer on every connection while no request is being answered, and graceful
//! shutdown. `axum::serve` has none of these, so a client that sent half a request head, or
//! simply opened connections, kept each of them (and its memory and file descriptor) forever.
//!
//! A connection is always in one of three states, and the state decides its timer:
//!
//! - *head*: a request has begun (or the connection is new) and its head is still arriving;
//!   the whole head must be in within [`Limits::header_timeout`].
//! - *busy*: a request is being answered; the gateway's request timeout bounds that instead.
//! - *idle*: a keep-alive connection between requests, closed after [`Limits::idle_timeout`].
//!
//! hyper's own `header_read_timeout` is not used: it starts when the connection becomes ready
//! for the next request, so on a keep-alive connection it would count the idle wait as header
//! time and the two limits could not differ.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Request},
    response::Response,
};
use http_body::{Frame, SizeHint};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, OwnedSemaphorePermit, Semaphore, watch},
    time::Instant,
};
use tower::{Service, ServiceExt};

/// What one gateway allows its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a request's head may take to arrive, from its first byte (or from accept, for
    /// a new connection's first request).
    pub header_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How many connections may be open at once; more are answered 503 and closed.
    pub max_connections: u32,
}

/// What a client over the cap is told before the connection closes: the API's 503, written
/// by hand because no request has been read.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\ncontent-length: 62\r\nconnection: close\r\n\r\n\
{\"detail\":\"Service temporarily unavailable, try again later.\"}";

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets every
/// connection finish the request it is answering, and returns when all are closed.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let capacity = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stop, stopping) = watch::channel(());
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
        let Ok(permit) = capacity.clone().try_acquire_owned() else {
            // Non-blocking and best effort: a client that cannot take 150 bytes now gets only
            // the close.
            let _ = stream.try_write(OVER_CAPACITY);
            tracing::warn!(%peer, "connection refused: GATEWAY_MAX_CONNECTIONS reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            stopping.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = stop.send(());
    // Every connection holds a permit until it ends: all of them back means all are closed.
    let _ = capacity.acquire_many(limits.max_connections).await;
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

/// Serves one connection until the client closes it, its timer runs out, or shutdown has
/// let its last request finish.
async fn connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    app: S,
    limits: Limits,
    mut stopping: watch::Receiver<()>,
    _permit: OwnedSemaphorePermit,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let activity = Arc::new(Activity::new(limits));
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let on_request = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        on_request.busy();
        let mut request = request.map(Body::new);
        // What `into_make_service_with_connect_info` gave the handlers: throttling keys on it.
        request.extensions_mut().insert(ConnectInfo(peer));
        let (app, activity) = (app.clone(), on_request.clone());
        async move {
            let response = app.oneshot(request).await?;
            Ok::<_, Infallible>(response.map(|body| Answer { body, activity }))
        }
    });
    let mut served = std::pin::pin!(http1::Builder::new().serve_connection(io, service));
    let mut draining = false;
    loop {
        let deadline = activity.deadline();
        tokio::select! {
            result = served.as_mut() => {
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
                served.as_mut().graceful_shutdown();
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

/// Which part of the request cycle a connection is in, and since when.
#[derive(Debug, Clone, Copy)]
enum State {
    Head { since: Instant },
    Busy,
    Idle { since: Instant },
}

/// The state of one connection, shared by its socket, its service and its timer.
#[derive(Debug)]
struct Activity {
    limits: Limits,
    state: Mutex<State>,
    /// Woken when the deadline may have moved, so the timer picks up the new one.
    changed: Notify,
}

impl Activity {
    /// A new connection: its first request's head is due within the header timeout.
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::Head {
                since: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }

    fn set(&self, update: impl FnOnce(State) -> Option<State>) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(next) = update(*state) {
            *state = next;
            drop(state);
            self.changed.notify_one();
        }
    }

    /// Bytes arrived: on an idle connection, a request has begun.
    fn received(&self) {
        self.set(|state| match state {
            State::Idle { .. } => Some(State::Head {
                since: Instant::now(),
            }),
            _ => None,
        });
    }

    /// A whole head is in and the request is being answered.
    fn busy(&self) {
        self.set(|_| Some(State::Busy));
    }

    /// The answer has been handed to the connection: wait for the next request.
    fn answered(&self) {
        self.set(|_| {
            Some(State::Idle {
                since: Instant::now(),
            })
        });
    }

    /// When the connection is to be closed if nothing changes; `None` while busy.
    fn deadline(&self) -> Option<Instant> {
        match *self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
        {
            State::Head { since } => Some(since + self.limits.header_timeout),
            State::Busy => None,
            State::Idle { since } => Some(since + self.limits.idle_timeout),
        }
    }
}

/// The socket, telling [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.received();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A response body that marks the connection idle when hyper is done with it (sent, or
/// dropped with the connection).
struct Answer {
    body: Body,
    activity: Arc<Activity>,
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.activity.answered();
    }
}
