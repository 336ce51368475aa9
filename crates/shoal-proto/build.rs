//! Generates the controller gRPC code from `proto/controller.proto`, with the protoc shipped by
//! `protoc-bin-vendored` (passed to prost-build explicitly: no `PROTOC` variable, which would
//! need `unsafe` in edition 2024), so building needs nothing installed by hand.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("../../proto");
    let proto = proto_dir.join("controller.proto");
    println!("cargo:rerun-if-changed={}", proto.display());

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(config, &[proto], &[proto_dir])?;
    Ok(())
}
