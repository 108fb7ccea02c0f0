//! Generates the gRPC code for `proto/` with protox, a protobuf compiler
//! written in Rust, so no machine needs `protoc`; and writes the compiled
//! descriptors, which server reflection serves (`crate::pb::FILE_DESCRIPTOR_SET`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files([
            "lienthong/v1/exchange.proto",
            "lienthong/v1/operations.proto",
        ])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("lienthong_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        // Malformed requests are the caller's fault: report INVALID_ARGUMENT,
        // not the INTERNAL that the stock codec uses.
        .codec_path("crate::api::codec::StrictCodec")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
