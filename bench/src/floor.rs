//! The two-hop floor: what any gateway in front of a gRPC service costs at least. An axum
//! handler makes one tonic unary call, with an `authorization` metadata entry, to a tonic
//! server whose reply carries the page's JSON bytes, and answers them as they are. Nothing is
//! validated, decoded or encoded: the rest is the two hops.

use std::{convert::Infallible, net::SocketAddr};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::get,
    serve::ListenerExt,
};
use tokio::net::TcpListener;
use tonic::{
    Request, Response, Status,
    body::Body,
    codegen::{BoxFuture, Bytes, Context, Poll, Service, http},
    server::{Grpc, NamedService, UnaryService},
    transport::{Channel, Server, server::TcpIncoming},
};

use proto::codec::ProtoCodec;

use crate::grpc::{self, Raw};

const PATH: &str = "/bench.Floor/Page";

/// Serves the floor at `path` on a free port, its tonic server on another; the HTTP address.
/// Both run on the calling runtime until it stops.
pub async fn serve(path: &str, page: Bytes) -> SocketAddr {
    let grpc = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let grpc_addr = grpc.local_addr().expect("an address");
    tokio::spawn(
        Server::builder()
            .add_service(PageServer(page))
            .serve_with_incoming(TcpIncoming::from(grpc).with_nodelay(Some(true))),
    );
    let channel = Channel::from_shared(format!("http://{grpc_addr}"))
        .expect("a URL")
        .connect_lazy();
    let http = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let http_addr = http.local_addr().expect("an address");
    let http = http.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = Router::new()
        .route(path, get(answer_page))
        .with_state(channel);
    tokio::spawn(async move { axum::serve(http, app).await });
    http_addr
}

/// The handler: the caller's `Authorization` passed on as metadata, the reply answered as is.
async fn answer_page(State(channel): State<Channel>, headers: HeaderMap) -> impl IntoResponse {
    let mut request = Request::new(Raw::default());
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok()?.parse().ok())
    {
        request.metadata_mut().insert("authorization", value);
    }
    match grpc::unary(channel, PATH, request).await {
        Ok(page) => Ok(([(header::CONTENT_TYPE, "application/json")], page)),
        Err(status) => Err((StatusCode::BAD_GATEWAY, status.message().to_owned())),
    }
}

/// A tonic server of one method, `bench.Floor/Page`, answering the page's bytes.
#[derive(Clone)]
struct PageServer(Bytes);

impl NamedService for PageServer {
    const NAME: &'static str = "bench.Floor";
}

impl Service<http::Request<Body>> for PageServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let answer = Answer(self.0.clone());
        Box::pin(async move {
            if request.uri().path() != PATH {
                return Ok(Status::unimplemented(request.uri().path()).into_http());
            }
            Ok(Grpc::new(ProtoCodec::<Raw, ()>::default())
                .unary(answer, request)
                .await)
        })
    }
}

struct Answer(Bytes);

impl UnaryService<()> for Answer {
    type Response = Raw;
    type Future = std::future::Ready<Result<Response<Raw>, Status>>;

    fn call(&mut self, request: Request<()>) -> Self::Future {
        // A caller is required, as the services require one (and not checked: no hop does).
        std::future::ready(match request.metadata().get("authorization") {
            Some(_) => Ok(Response::new(Raw(self.0.clone()))),
            None => Err(Status::unauthenticated("no authorization")),
        })
    }
}
