//! One connection served by hyper, in the protocol it speaks: HTTP/1.1 over plain TCP, and over
//! TLS whatever ALPN agreed on (`h2` for HTTP/2, else HTTP/1.1). [`Served`] is the connection's
//! future and its graceful shutdown, whichever it is.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use hyper::{
    body::Incoming,
    server::conn::{http1, http2},
    service::HttpService,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::server::TlsStream;

use super::activity::{Answer, Watched};

/// The protocols the gateway offers over TLS, preferred first.
pub(crate) const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A connection being served; resolves when it has ended.
pub(super) struct Served(Pin<Box<dyn Connection>>);

/// What both protocols' connections do.
trait Connection: Future<Output = hyper::Result<()>> + Send {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S> Connection for http1::Connection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: HttpService<Incoming, ResBody = Answer> + Send + 'static,
    S::Future: Send,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::Connection::graceful_shutdown(self);
    }
}

impl<I, S> Connection for http2::Connection<I, S, TokioExecutor>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: HttpService<Incoming, ResBody = Answer> + Send + 'static,
    S::Future: Send + 'static,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self);
    }
}

impl Served {
    /// HTTP/1.1 over plain TCP.
    pub(super) fn http1<S>(io: Watched<TcpStream>, service: S) -> Self
    where
        S: HttpService<Incoming, ResBody = Answer> + Send + 'static,
        S::Future: Send,
    {
        Self(Box::pin(serve_http1(io, service)))
    }

    /// Over TLS: HTTP/2 when the client agreed to it, else HTTP/1.1.
    pub(super) fn over_tls<S>(io: Watched<TlsStream<TcpStream>>, service: S) -> Self
    where
        S: HttpService<Incoming, ResBody = Answer> + Send + 'static,
        S::Future: Send + 'static,
    {
        let h2 = io.stream.get_ref().1.alpn_protocol() == Some(ALPN[0]);
        if h2 {
            let connection = http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service);
            Self(Box::pin(connection))
        } else {
            Self(Box::pin(serve_http1(io, service)))
        }
    }

    pub(super) fn graceful_shutdown(&mut self) {
        self.0.as_mut().graceful_shutdown();
    }
}

fn serve_http1<I, S>(io: Watched<I>, service: S) -> http1::Connection<TokioIo<Watched<I>>, S>
where
    I: AsyncRead + AsyncWrite + Unpin,
    S: HttpService<Incoming, ResBody = Answer>,
{
    http1::Builder::new().serve_connection(TokioIo::new(io), service)
}

impl Future for Served {
    type Output = hyper::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}
