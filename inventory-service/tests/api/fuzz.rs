//! Every RPC of both services, fuzzed over real sockets: messages built from the descriptor set
//! with random field values (valid protobuf, values anywhere in their types' ranges) and random
//! bytes that are mostly not protobuf at all, with no credentials, a valid token of an admin or
//! a clerk, or a bad one. No call may fail as the servers' own fault, and both stay up.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU32, Ordering},
};

use proptest::{
    collection::vec,
    prelude::*,
    test_runner::{Config, TestRunner},
};
use prost::{
    Message,
    bytes::{Buf, BufMut, Bytes},
};
use prost_types::{
    DescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};
use tonic::{
    Code, Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::{Channel, Endpoint},
};

use crate::helpers::{spawn_app, with_authorization};

/// Valid messages and random bytes, each case a call. Bounded: this runs in seconds.
const MESSAGE_CASES: u32 = 600;
const BYTES_CASES: u32 = 200;

/// A codec that passes the message bytes through untouched, so a test can send what a generated
/// client never would.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One RPC: which server, its path, and its request message's full name.
#[derive(Debug, Clone)]
struct Rpc {
    inventory: bool,
    path: String,
    input: String,
}

/// Every RPC of `auth.v1.AuthService` and `inventory.v1.InventoryService`, and every message
/// type by full name (`.auth.v1.LoginRequest`), from the descriptor set the servers reflect.
fn rpcs_and_messages() -> (Vec<Rpc>, HashMap<String, DescriptorProto>) {
    fn add(prefix: &str, message: &DescriptorProto, into: &mut HashMap<String, DescriptorProto>) {
        let name = format!("{prefix}.{}", message.name());
        for nested in &message.nested_type {
            add(&name, nested, into);
        }
        into.insert(name, message.clone());
    }
    let set = FileDescriptorSet::decode(proto::FILE_DESCRIPTOR_SET).expect("a descriptor set");
    let (mut rpcs, mut messages) = (Vec::new(), HashMap::new());
    for file in &set.file {
        let prefix = format!(".{}", file.package());
        for message in &file.message_type {
            add(&prefix, message, &mut messages);
        }
        for service in &file.service {
            let full_name = format!("{}.{}", file.package(), service.name());
            if !["auth.v1.AuthService", "inventory.v1.InventoryService"].contains(&&*full_name) {
                continue;
            }
            for method in &service.method {
                rpcs.push(Rpc {
                    inventory: full_name.starts_with("inventory"),
                    path: format!("/{full_name}/{}", method.name()),
                    input: method.input_type().to_owned(),
                });
            }
        }
    }
    (rpcs, messages)
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn key(number: i32, wire_type: u64, out: &mut Vec<u8>) {
    varint(
        (u64::try_from(number).expect("a field number") << 3) | wire_type,
        out,
    );
}

/// Strings a service might take for something meaningful, and any text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        prop::sample::select(vec![
            "alice",
            "root",
            "a@example.com",
            "correct-horse-9",
            "Password123",
            "19.99",
            "-1",
            "0.001",
            "ROLE_ADMIN",
            "0123456789abcdef0123456789abcdef01234567",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,40}",
        "[0-9]{1,30}(\\.[0-9]{0,4})?",
    ]
}

/// Integers near zero (ids, counts, small enums) and anywhere else.
fn integer() -> impl Strategy<Value = i64> {
    prop_oneof![-3i64..100, any::<i64>(), Just(i64::from(i32::MAX) + 1)]
}

/// One encoded field: key and value, valid for its declared type.
fn field_value(
    number: i32,
    kind: Type,
    type_name: &str,
    messages: &HashMap<String, DescriptorProto>,
    depth: u32,
) -> BoxedStrategy<Vec<u8>> {
    let encode_varint = move |value: u64| {
        let mut out = Vec::new();
        key(number, 0, &mut out);
        varint(value, &mut out);
        out
    };
    let delimited = move |bytes: Vec<u8>| {
        let mut out = Vec::new();
        key(number, 2, &mut out);
        varint(bytes.len() as u64, &mut out);
        out.extend(bytes);
        out
    };
    match kind {
        Type::String => text().prop_map(move |s| delimited(s.into_bytes())).boxed(),
        Type::Bytes => vec(any::<u8>(), 0..32).prop_map(delimited).boxed(),
        Type::Bool => (0u64..=1).prop_map(encode_varint).boxed(),
        // int32 and enums: negative values are sign-extended to ten bytes, as protobuf says.
        Type::Int32 | Type::Enum => integer()
            .prop_map(move |v| encode_varint(i64::from(v as i32) as u64))
            .boxed(),
        Type::Uint32 => integer()
            .prop_map(move |v| encode_varint(u64::from(v as u32)))
            .boxed(),
        Type::Int64 | Type::Uint64 => integer().prop_map(move |v| encode_varint(v as u64)).boxed(),
        Type::Sint32 | Type::Sint64 => integer()
            .prop_map(move |v| encode_varint(((v << 1) ^ (v >> 63)) as u64))
            .boxed(),
        Type::Fixed64 | Type::Sfixed64 | Type::Double => any::<u64>()
            .prop_map(move |v| {
                let mut out = Vec::new();
                key(number, 1, &mut out);
                out.extend(v.to_le_bytes());
                out
            })
            .boxed(),
        Type::Fixed32 | Type::Sfixed32 | Type::Float => any::<u32>()
            .prop_map(move |v| {
                let mut out = Vec::new();
                key(number, 5, &mut out);
                out.extend(v.to_le_bytes());
                out
            })
            .boxed(),
        Type::Message if depth > 0 => message(type_name, messages, depth - 1)
            .prop_map(delimited)
            .boxed(),
        Type::Message => Just(delimited(Vec::new())).boxed(),
        Type::Group => Just(Vec::new()).boxed(),
    }
}

/// An encoded `name` message: each field absent or present (repeated ones up to three times).
fn message(
    name: &str,
    messages: &HashMap<String, DescriptorProto>,
    depth: u32,
) -> BoxedStrategy<Vec<u8>> {
    let descriptor = messages
        .get(name)
        .unwrap_or_else(|| panic!("{name} is in the set"));
    let fields: Vec<BoxedStrategy<Vec<u8>>> = descriptor
        .field
        .iter()
        .map(|field| {
            let most = if field.label() == Label::Repeated {
                3
            } else {
                1
            };
            let value = field_value(
                field.number(),
                field.r#type(),
                field.type_name(),
                messages,
                depth,
            );
            vec(value, 0..=most)
                .prop_map(|values| values.concat())
                .boxed()
        })
        .collect();
    fields.prop_map(|fields| fields.concat()).boxed()
}

/// Bytes that are rarely a valid message: random ones, a field of wire type 7 (none such
/// exists), a truncated varint, field 1 as a string of invalid UTF-8.
fn junk() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..64),
        Just(vec![0x0f]),
        Just(vec![0x08, 0xff]),
        Just(vec![0x0a, 0x02, 0xff, 0xfe]),
        Just(vec![0x0a, 0x7f]),
    ]
}

/// Which `authorization` a call carries.
#[derive(Debug, Clone)]
enum Caller {
    Anonymous,
    Admin,
    Clerk,
    Other(String),
}

fn caller() -> impl Strategy<Value = Caller> {
    prop_oneof![
        Just(Caller::Anonymous),
        Just(Caller::Admin),
        Just(Caller::Clerk),
        "(Token|Bearer|Basic|Session) [ -~]{0,44}".prop_map(Caller::Other),
    ]
}

#[test]
fn every_rpc_survives_random_messages_and_bytes() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (rpcs, messages) = rpcs_and_messages();
    assert_eq!(rpcs.len(), 30, "{rpcs:?}");
    let (app, auth, inventory) = runtime.block_on(async {
        let app = spawn_app(service_kit::testing::TestDatabase::sqlite()).await;
        let connect = |addr: std::net::SocketAddr| async move {
            Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .expect("the service accepts")
        };
        let (auth, inventory) = (
            connect(app.auth_addr).await,
            connect(app.inventory_addr()).await,
        );
        (app, auth, inventory)
    });
    let users = AtomicU32::new(0);
    let call = |rpc: &Rpc, body: Vec<u8>, caller: &Caller| -> Result<Bytes, Status> {
        runtime.block_on(async {
            // A fresh user per call: a case may revoke, deactivate or delete whom it calls as.
            let user = users.fetch_add(1, Ordering::Relaxed) + 1;
            let authorization = match caller {
                Caller::Anonymous => None,
                Caller::Admin => Some(format!("Token {}", app.new_superuser_token(user).await)),
                Caller::Clerk => Some(format!("Token {}", app.new_clerk_token(user).await)),
                Caller::Other(value) => Some(value.clone()),
            };
            let channel: Channel = if rpc.inventory {
                inventory.clone()
            } else {
                auth.clone()
            };
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.expect("the server is up");
            let body = Bytes::from(body);
            let request = match &authorization {
                Some(value) => match value.parse::<tonic::metadata::MetadataValue<_>>() {
                    Ok(_) => with_authorization(body, value),
                    Err(_) => Request::new(body),
                },
                None => Request::new(body),
            };
            let path = rpc.path.parse().expect("a path");
            grpc.unary(request, path, RawCodec)
                .await
                .map(tonic::Response::into_inner)
        })
    };

    // Whatever a call is sent, it may be refused but never fail as the server's own fault.
    let no_server_fault = |(rpc, body, caller): (Rpc, Vec<u8>, Caller)| {
        if let Err(status) = call(&rpc, body.clone(), &caller) {
            prop_assert!(
                !matches!(
                    status.code(),
                    Code::Internal | Code::Unknown | Code::Unavailable | Code::DataLoss
                ),
                "{} as {caller:?} with {body:02x?}: {status:?}",
                rpc.path
            );
        }
        Ok(())
    };
    let mut runner = TestRunner::new(Config {
        cases: MESSAGE_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let valid = prop::sample::select(rpcs.clone()).prop_flat_map(|rpc| {
        let body = message(&rpc.input, &messages, 2);
        (Just(rpc), body, caller())
    });
    runner.run(&valid, no_server_fault).unwrap();

    let mut runner = TestRunner::new(Config {
        cases: BYTES_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let invalid = (prop::sample::select(rpcs.clone()), junk(), caller());
    // Bytes that are not the message are the caller's error, never a fault.
    runner.run(&invalid, no_server_fault).unwrap();

    // Both servers are still up and serving.
    runtime.block_on(async {
        let token = app.new_superuser_token(0).await;
        let mut products = app.inventory();
        products
            .list_products(crate::helpers::with_token(
                proto::inventory::v1::ListProductsRequest::default(),
                &token,
            ))
            .await
            .expect("inventory still serves");
    });
    drop(app);
}
