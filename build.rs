//! Generates the gRPC code for `proto/` with protox, a protobuf compiler
//! written in Rust, so no machine needs `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(
        [
            "lienthong/v1/exchange.proto",
            "lienthong/v1/operations.proto",
        ],
        ["proto"],
    )?;
    tonic_prost_build::configure()
        // Malformed requests are the caller's fault: report INVALID_ARGUMENT,
        // not the INTERNAL that the stock codec uses.
        .codec_path("crate::api::codec::StrictCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
