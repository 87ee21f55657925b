//! gRPC calls as bytes: [`Raw`], a message that is its encoded bytes (so that proto's own
//! codecs pass it through), a unary call described by its path, metadata and message (what
//! h2load is given), and the bench's own caller of such a call. The two-hop floor's server
//! answers with a [`Raw`], and its client calls with one.

use std::net::SocketAddr;

use prost::{
    DecodeError, Message,
    bytes::{Buf, BufMut},
    encoding::{DecodeContext, WireType},
};
use proto::codec::UndecodedReplies;
use tonic::{
    Request, Status,
    client::Grpc,
    codegen::{Bytes, http::uri::PathAndQuery},
    transport::Channel,
};

use crate::load::Call;

/// A message already encoded: written as its bytes; read by skipping every field (the floor's
/// server ignores its request).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Raw(pub Bytes);

impl Message for Raw {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// One unary call: where, which method, its metadata and its encoded message.
#[derive(Debug, Clone)]
pub struct GrpcRequest {
    pub addr: SocketAddr,
    /// `/package.Service/Method`.
    pub path: &'static str,
    pub metadata: Vec<(&'static str, String)>,
    pub message: Bytes,
}

impl GrpcRequest {
    pub fn new(addr: SocketAddr, path: &'static str, message: &impl Message) -> Self {
        Self {
            addr,
            path,
            metadata: Vec::new(),
            message: message.encode_to_vec().into(),
        }
    }

    /// With `authorization: Token <key>`, as the gateway and the auth layer pass a caller.
    pub fn authorized(mut self, key: &str) -> Self {
        self.metadata
            .push(("authorization", format!("Token {key}")));
        self
    }

    /// The message as one length-prefixed gRPC frame (not compressed): h2load's request body.
    pub fn frame(&self) -> Vec<u8> {
        let length = u32::try_from(self.message.len()).expect("a small message");
        let mut frame = Vec::with_capacity(5 + self.message.len());
        frame.push(0);
        frame.extend_from_slice(&length.to_be_bytes());
        frame.extend_from_slice(&self.message);
        frame
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    /// Makes the call on `channel`: the reply's bytes, or the status it ended with.
    pub async fn send(&self, channel: Channel) -> Result<Bytes, Status> {
        let mut request = Request::new(Raw(self.message.clone()));
        for (name, value) in &self.metadata {
            let value = value.parse().map_err(|_| Status::internal("metadata"))?;
            request.metadata_mut().insert(*name, value);
        }
        unary(channel, self.path, request).await
    }
}

/// A unary call of `path` with `request`, on `channel`: the reply's bytes, undecoded.
pub async fn unary(
    channel: Channel,
    path: &'static str,
    request: Request<Raw>,
) -> Result<Bytes, Status> {
    let mut client = Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let response = client
        .unary(
            request,
            PathAndQuery::from_static(path),
            UndecodedReplies::<Raw>::default(),
        )
        .await?;
    Ok(response.into_inner())
}

/// The bench's own caller: one stream of calls on a shared connection, a success being an OK
/// status.
pub struct GrpcCaller {
    pub channel: Channel,
    pub request: GrpcRequest,
}

impl Call for GrpcCaller {
    async fn call(&mut self) -> bool {
        self.request.send(self.channel.clone()).await.is_ok()
    }
}
