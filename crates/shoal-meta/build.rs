//! Generates the controller gRPC code from `proto/controller.proto` and the metadata formats
//! from `proto/metadata.proto`.
//!
//! Uses the protoc shipped by `protoc-bin-vendored`, passed to prost-build explicitly (no
//! `PROTOC` environment variable, which would need `unsafe` in edition 2024), so building needs
//! nothing installed by hand.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("../../proto");
    let protos = [
        proto_dir.join("controller.proto"),
        proto_dir.join("metadata.proto"),
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(config, &protos, &[proto_dir])?;
    Ok(())
}
