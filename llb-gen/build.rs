//! Generates the LLB protobuf types (`llb_gen::pb`) from `proto/` with a
//! pure-Rust compiler (protox), so no system `protoc` is needed.

use std::io;

const PROTOS: &[&str] = &["ops.proto", "caps.proto"];

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=build.rs");
    for p in PROTOS {
        println!("cargo:rerun-if-changed=proto/{p}");
    }

    let fds = protox::compile(PROTOS, ["proto"]).map_err(|e| io::Error::other(e.to_string()))?;

    prost_build::Config::new()
        // Vertex digests hash the encoded bytes: maps must encode in a
        // stable (sorted) order, so every map is a BTreeMap.
        .btree_map(["."])
        .compile_fds(fds)
}
