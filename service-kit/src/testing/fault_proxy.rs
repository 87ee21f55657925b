//! A fault-injecting gRPC proxy for tests: it sits between a client and a server (put its
//! address where the client's URL would name the server) and passes every call through
//! unchanged, each on its own HTTP/2 stream, until a test tells it otherwise. Faults are aimed
//! at a method, by its gRPC path, and each is spent on the next call of that method:
//!
//! - [`Fault::DelayRequest`]: the call's request messages reach the server only after a delay
//!   (its headers go at once, so the server has the call open), as a slow network would hold
//!   a stream's frames. On a `WatchRevocations` stream that is the holder's hello.
//! - [`Fault::DelayAnswer`] and [`Fault::HoldAnswer`]: the server answers at once, and the
//!   answer (headers, messages, trailers) reaches the client after a delay, or when the test
//!   releases it. The answer was computed when the server saw the call, not when the client
//!   sees it.
//! - [`Fault::DropAnswer`]: the server answers, and the client gets a reset stream instead.
//!
//! [`FaultProxy::cut`] ends every open call of a method at once, as a broken connection would,
//! so that a stream reconnects on command. Nothing is decoded: the proxy moves HTTP/2 frames.

use std::{
    collections::{HashMap, VecDeque},
    error::Error as StdError,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, combinators::UnsyncBoxBody};
use hyper::{body::Incoming, client::conn::http2 as client, server::conn::http2 as server};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
    time::Sleep,
};

type BoxError = Box<dyn StdError + Send + Sync>;
type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// What happens to one call.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The request's messages are held this long before they go on.
    DelayRequest(Duration),
    /// The answer is held this long before it goes on.
    DelayAnswer(Duration),
    /// The answer is held until [`Hold::release`].
    HoldAnswer(Hold),
    /// The client never gets the answer: its stream is reset once the server has answered.
    DropAnswer,
}

/// An answer held until released; cheap to clone.
#[derive(Debug, Clone)]
pub struct Hold {
    released: watch::Sender<bool>,
    /// Set once a call's answer has arrived at the hold.
    reached: watch::Sender<bool>,
}

impl Default for Hold {
    fn default() -> Self {
        Self::new()
    }
}

impl Hold {
    pub fn new() -> Self {
        Self {
            released: watch::Sender::new(false),
            reached: watch::Sender::new(false),
        }
    }

    /// Lets the held answer (and any later one) go on.
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    /// Returns once the server's answer to the call is held here.
    pub async fn reached(&self) {
        let mut reached = self.reached.subscribe();
        let _ = reached.wait_for(|reached| *reached).await;
    }

    async fn wait(&self) {
        self.reached.send_replace(true);
        let mut released = self.released.subscribe();
        let _ = released.wait_for(|released| *released).await;
    }
}

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Shared {
    methods: Mutex<HashMap<String, Method>>,
}

/// What the proxy knows of one method.
#[derive(Debug)]
struct Method {
    faults: VecDeque<Fault>,
    /// Bumped by [`FaultProxy::cut`]: every call open then ends.
    cuts: watch::Sender<u64>,
}

impl Default for Method {
    fn default() -> Self {
        Self {
            faults: VecDeque::new(),
            cuts: watch::Sender::new(0),
        }
    }
}

impl Shared {
    fn methods(&self) -> MutexGuard<'_, HashMap<String, Method>> {
        self.methods
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new call of `path`: the fault it suffers, and the signal that cuts it.
    fn begin(&self, path: &str) -> (Option<Fault>, watch::Receiver<u64>) {
        let mut methods = self.methods();
        let method = methods.entry(path.to_owned()).or_default();
        (method.faults.pop_front(), method.cuts.subscribe())
    }
}

impl FaultProxy {
    /// A proxy on a free loopback port, passing calls to `upstream`.
    ///
    /// # Panics
    ///
    /// If no port can be bound.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port for the proxy");
        let addr = listener.local_addr().expect("a bound address");
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(accept(listener, upstream, shared.clone()));
        Self { addr, shared, task }
    }

    /// `http://addr`, for a client's settings.
    pub fn url(&self) -> Uri {
        format!("http://{}", self.addr)
            .parse()
            .expect("a valid URL")
    }

    /// The next call of `method` (a gRPC path, `/package.Service/Method`) suffers `fault`;
    /// several wait their turn in order.
    pub fn inject(&self, method: &str, fault: Fault) {
        self.shared
            .methods()
            .entry(method.to_owned())
            .or_default()
            .faults
            .push_back(fault);
    }

    /// Ends every call of `method` open now with a reset stream.
    pub fn cut(&self, method: &str) {
        self.shared
            .methods()
            .entry(method.to_owned())
            .or_default()
            .cuts
            .send_modify(|cuts| *cuts += 1);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((socket, _)) = listener.accept().await {
        connections.spawn(relay(socket, upstream, shared.clone()));
    }
}

/// One client connection, relayed over one connection of its own to the server: when either
/// goes, so does the other.
async fn relay(socket: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    let Ok(server_socket) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = socket.set_nodelay(true);
    let _ = server_socket.set_nodelay(true);
    let Ok((sender, connection)) =
        client::handshake::<_, _, ProxyBody>(TokioExecutor::new(), TokioIo::new(server_socket))
            .await
    else {
        return;
    };
    let upstream_connection = tokio::spawn(connection);
    let service =
        hyper::service::service_fn(move |request| forward(request, sender.clone(), shared.clone()));
    let _ = server::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(socket), service)
        .await;
    upstream_connection.abort();
}

async fn forward(
    request: Request<Incoming>,
    mut sender: client::SendRequest<ProxyBody>,
    shared: Arc<Shared>,
) -> Result<Response<ProxyBody>, BoxError> {
    let (fault, cuts) = shared.begin(request.uri().path());
    let request_delay = match &fault {
        Some(Fault::DelayRequest(delay)) => Some(*delay),
        _ => None,
    };
    let (parts, body) = request.into_parts();
    let body = Faulty::new(body, request_delay, cuts.clone()).boxed_unsync();
    let mut cut = cut_signal(cuts.clone());
    let response = tokio::select! {
        response = sender.send_request(Request::from_parts(parts, body)) => response?,
        () = &mut cut => return Err("cut by the test".into()),
    };
    let held = async {
        match &fault {
            Some(Fault::DelayAnswer(delay)) => tokio::time::sleep(*delay).await,
            Some(Fault::HoldAnswer(hold)) => hold.wait().await,
            _ => {}
        }
    };
    tokio::select! {
        () = held => {}
        () = &mut cut => return Err("cut by the test".into()),
    }
    if matches!(fault, Some(Fault::DropAnswer)) {
        return Err("answer dropped by the test".into());
    }
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(
        parts,
        Faulty::new(body, None, cuts).boxed_unsync(),
    ))
}

/// Resolves when the method's calls are cut (or the proxy is gone).
fn cut_signal(mut cuts: watch::Receiver<u64>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let _ = cuts.changed().await;
    })
}

/// A body passed on frame by frame: after `delay`, until a cut ends it with an error (hyper
/// resets the stream).
struct Faulty {
    inner: Incoming,
    delay: Option<Pin<Box<Sleep>>>,
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Faulty {
    fn new(inner: Incoming, delay: Option<Duration>, cuts: watch::Receiver<u64>) -> Self {
        Self {
            inner,
            delay: delay.map(|delay| Box::pin(tokio::time::sleep(delay))),
            cut: cut_signal(cuts),
        }
    }
}

impl Body for Faulty {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if self.cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err("cut by the test".into())));
        }
        if let Some(delay) = self.delay.as_mut() {
            if delay.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.delay = None;
        }
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(|err| Box::new(err) as BoxError)
    }

    fn is_end_stream(&self) -> bool {
        self.delay.is_none() && self.inner.is_end_stream()
    }
}
