//! The state of one connection in the request cycle, which decides its timer and whether its
//! slot may be given to another: kept by [`Activity`], told of arriving bytes by [`Watched`]
//! (the socket) and of a finished answer by [`Answer`] (the response body).

use std::{
    io,
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
    time::Instant,
};

use super::Limits;

/// Which part of the request cycle a connection is in, and since when.
#[derive(Debug, Clone, Copy)]
enum State {
    Head {
        since: Instant,
    },
    /// `answering` requests at once: one on HTTP/1.1, any number of streams on HTTP/2.
    Busy {
        answering: u32,
    },
    Idle {
        since: Instant,
    },
}

/// The state of one connection, shared by its socket, its service, its timer and the slots.
#[derive(Debug)]
pub(super) struct Activity {
    limits: Limits,
    state: Mutex<State>,
    /// Set (under the state's lock, and only while idle) when the connection's slot has been
    /// given to a new connection: it is to be closed the next time it is idle, which is at once
    /// unless a request began just after it was chosen. It stays set whatever the state does.
    evicted: AtomicBool,
    /// Woken when the deadline may have moved or the connection was evicted, so the
    /// connection's task looks again.
    pub(super) changed: Notify,
}

impl Activity {
    /// A new connection: its first request's head is due within the header timeout.
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::Head {
                since: Instant::now(),
            }),
            evicted: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `update` to the state; when it returns a new state, wakes the connection's task.
    fn set(&self, update: impl FnOnce(State) -> Option<State>) {
        let mut state = self.state();
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
        self.set(|state| match state {
            State::Busy { answering } => Some(State::Busy {
                answering: answering.saturating_add(1),
            }),
            _ => Some(State::Busy { answering: 1 }),
        });
    }

    /// An answer has been handed to the connection: once none is being answered, wait for the
    /// next request.
    pub(super) fn answered(&self) {
        self.set(|state| match state {
            State::Busy { answering } if answering > 1 => Some(State::Busy {
                answering: answering - 1,
            }),
            _ => Some(State::Idle {
                since: Instant::now(),
            }),
        });
    }

    /// Since when the connection has been waiting between requests; `None` unless idle.
    pub(super) fn idle_since(&self) -> Option<Instant> {
        match *self.state() {
            State::Idle { since } => Some(since),
            _ => None,
        }
    }

    /// Marks the connection evicted if it is idle, checked and marked under one lock, so that
    /// one whose request has begun is never chosen. Whether it was idle.
    pub(super) fn evict_if_idle(&self) -> bool {
        let state = self.state();
        if !matches!(*state, State::Idle { .. }) {
            return false;
        }
        self.evicted.store(true, Ordering::Relaxed);
        drop(state);
        self.changed.notify_one();
        true
    }

    /// Whether the connection's slot has been given away and it is between requests: it is to
    /// be closed now.
    pub(super) fn is_evicted_and_idle(&self) -> bool {
        let state = self.state();
        self.evicted.load(Ordering::Relaxed) && matches!(*state, State::Idle { .. })
    }

    /// When the connection is to be closed if nothing changes; `None` while busy.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match *self.state() {
            State::Head { since } => Some(since + self.limits.header_timeout),
            State::Busy { .. } => None,
            State::Idle { since } => Some(since + self.limits.idle_timeout),
        }
    }
}

/// The socket (or the TLS stream over it), telling [`Activity`] when bytes arrive.
pub(super) struct Watched<S> {
    pub(super) stream: S,
    pub(super) activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
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

/// One request being answered: the connection is busy from the request's head until this is
/// dropped, with its answer sent (inside [`Answer`]) or with the request abandoned (an HTTP/2
/// stream the client resets before its answer is made drops the service's future, and this
/// with it, so the connection does not stay busy, and untimed, for good).
pub(super) struct Answering(Arc<Activity>);

impl Activity {
    /// A request's head is in: the connection is busy until the returned guard is dropped.
    pub(super) fn begin(self: &Arc<Self>) -> Answering {
        self.busy();
        Answering(self.clone())
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.answered();
    }
}

/// A response body that marks its request answered when hyper is done with it (sent, or
/// dropped with the connection).
pub(super) struct Answer {
    pub(super) body: Body,
    /// Held, not read: dropped with the body, it marks the request answered.
    pub(super) _answering: Answering,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 8,
            max_connections_per_client: 8,
        }
    }

    /// An HTTP/2 connection answers several streams at once: it is idle (its timer running, its
    /// slot up for eviction) only once the last of them is answered.
    #[test]
    fn a_connection_is_idle_only_once_every_answer_is_sent() {
        let activity = Activity::new(limits());
        activity.busy();
        activity.busy();
        activity.answered();
        assert_eq!(
            activity.deadline(),
            None,
            "one stream is still being answered"
        );
        assert!(!activity.evict_if_idle());
        activity.answered();
        assert!(activity.deadline().is_some() && activity.idle_since().is_some());
    }

    /// A request abandoned before its answer was made (its future dropped) is answered too.
    #[test]
    fn an_abandoned_request_leaves_the_connection_idle() {
        let activity = Arc::new(Activity::new(limits()));
        let answering = activity.begin();
        assert_eq!(activity.deadline(), None);
        drop(answering);
        assert!(activity.idle_since().is_some(), "the timer runs again");
    }
}
