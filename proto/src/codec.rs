//! The protobuf codec of every generated client and server. It encodes and decodes as
//! tonic-prost's does, with fewer instructions ([`VecEncoder`], [`CallerDecoder`]), and it
//! answers bytes which do not decode as the expected message with INVALID_ARGUMENT.
//! tonic-prost answers them with INTERNAL (gRPC's table lists parse failures there), which
//! reads as a fault of the server: alerts fire, and retrying clients retry. Here the caller
//! sent them, so the caller is told. (A client decoding a reply would say the same; our
//! services' replies always decode.) [`UndecodedReplies`] is the client codec for a reply
//! kept as the bytes it came in.

use std::marker::PhantomData;

use prost::{
    Message,
    bytes::{Buf, BufMut, Bytes},
};
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

#[derive(Debug, Clone, Copy)]
pub struct ProtoCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for ProtoCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for ProtoCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = VecEncoder<T>;
    type Decoder = CallerDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        VecEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        CallerDecoder(PhantomData)
    }
}

/// A client's codec that encodes the request as [`ProtoCodec`] does and hands the reply over
/// undecoded: for a reply that is only written out again in another form, whose output the
/// caller can then remember by the bytes it came from.
#[derive(Debug, Clone, Copy)]
pub struct UndecodedReplies<T>(PhantomData<T>);

impl<T> Default for UndecodedReplies<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: Message + Send + 'static> Codec for UndecodedReplies<T> {
    type Encode = T;
    type Decode = Bytes;
    type Encoder = VecEncoder<T>;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        VecEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesDecoder
    }
}

/// A message's bytes, as they came.
#[derive(Debug)]
pub struct BytesDecoder;

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// Encodes a message into a `Vec` of its exact size, then copies that into tonic's buffer at
/// once. prost writing field by field into the buffer itself goes through `BytesMut`'s
/// capacity check on every varint byte and every field: a third of inventory's instructions
/// per listed page, against a tenth of that for the `Vec` and the one copy (BENCHMARKS.md).
#[derive(Debug)]
pub struct VecEncoder<T>(PhantomData<T>);

impl<T: Message> Encoder for VecEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item.encode_to_vec());
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// Decodes from the message's bytes as one slice, where tonic's buffer hands them over
/// through `Buf`, whose per-field `advance` was a quarter of the gateway's decoding of a page.
/// Bytes that do not decode are INVALID_ARGUMENT, with prost's reason.
#[derive(Debug)]
pub struct CallerDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for CallerDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let len = buf.remaining();
        let decoded = if buf.chunk().len() >= len {
            let decoded = U::decode(&buf.chunk()[..len]);
            buf.advance(len);
            decoded
        } else {
            // tonic's buffer is one contiguous `BytesMut`, but `Buf` does not promise it.
            U::decode(buf.copy_to_bytes(len))
        };
        decoded
            .map(Some)
            .map_err(|error| Status::invalid_argument(error.to_string()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
