//! The protobuf codec of every generated client and server: tonic-prost's, except that bytes
//! which do not decode as the expected message are INVALID_ARGUMENT. tonic-prost answers such
//! bytes with INTERNAL (gRPC's table lists parse failures there), which reads as a fault of the
//! server: alerts fire, and retrying clients retry. Here the caller sent them, so the caller is
//! told. (A client decoding a reply would say the same; our services' replies always decode.)

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

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
    type Encoder = ProstEncoder<T>;
    type Decoder = CallerDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        CallerDecoder(ProstCodec::<T, U>::default().decoder())
    }
}

/// tonic-prost's decoder, with its failures turned into INVALID_ARGUMENT.
#[derive(Debug)]
pub struct CallerDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for CallerDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0
            .decode(buf)
            .map_err(|status| Status::invalid_argument(status.message().to_owned()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
