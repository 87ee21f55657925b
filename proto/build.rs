//! Compiles `auth/v1/auth.proto` and `inventory/v1/inventory.proto` with the pure-Rust `protox`
//! (no system `protoc`), generates tonic clients and servers from the result, and writes the same
//! descriptor set out for server reflection. The services use `codec::ProtoCodec`.

use std::{env, path::PathBuf};

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
    tonic_prost_build::configure()
        .codec_path("crate::codec::ProtoCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
