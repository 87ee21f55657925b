//! Compiles `auth/v1/auth.proto` and `inventory/v1/inventory.proto` with the pure-Rust `protox`
//! (no system `protoc`), generates tonic clients and servers from the result, and writes the same
//! descriptor set out for server reflection. The services use `codec::ProtoCodec`. The methods
//! the `.proto` files mark `option idempotency_level = NO_SIDE_EFFECTS` become
//! `idempotency::READS` (`reads.rs`), so a new read is marked where it is declared.

use std::{env, fmt::Write as _, path::PathBuf};

use prost_types::{FileDescriptorSet, method_options::IdempotencyLevel};

const PROTOS: &[&str] = &["auth/v1/auth.proto", "inventory/v1/inventory.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("descriptor_set.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    std::fs::write(out_dir.join("reads.rs"), reads(&descriptors))?;
    tonic_prost_build::configure()
        .codec_path("crate::codec::ProtoCodec")
        .compile_fds(descriptors)?;
    Ok(())
}

/// `READS`: the gRPC path of every method marked NO_SIDE_EFFECTS, as Rust source.
fn reads(descriptors: &FileDescriptorSet) -> String {
    let mut source = String::from("&[\n");
    for file in &descriptors.file {
        for service in &file.service {
            for method in &service.method {
                let level = method
                    .options
                    .as_ref()
                    .map(|options| options.idempotency_level());
                if level == Some(IdempotencyLevel::NoSideEffects) {
                    let _ = writeln!(
                        source,
                        "    \"/{}.{}/{}\",",
                        file.package(),
                        service.name(),
                        method.name()
                    );
                }
            }
        }
    }
    source.push(']');
    source
}
