//! Generates the BuildKit gateway client and messages (`crate::pb`) from
//! `proto/` with protox + tonic-prost-build (client only, no protoc).
//! LLB (`.pb`) and capability (`.moby.buildkit.v1.apicaps`) types come from
//! the llb-gen crate rather than being generated twice.

use std::io;

const PROTOS: &[&str] = &["gateway.proto", "errdefs.proto"];
const INCLUDES: &[&str] = &["proto", "../llb-gen/proto"];

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=build.rs");
    for dir in INCLUDES {
        println!("cargo:rerun-if-changed={dir}");
    }

    // The set includes the imported files: prost-build needs their messages
    // to decide derives. Code for the extern packages is not emitted into
    // (or not included from) OUT_DIR.
    let fds = protox::compile(PROTOS, INCLUDES).map_err(|e| io::Error::other(e.to_string()))?;

    let mut config = prost_build::Config::new();
    config.btree_map(["."]);

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .extern_path(".pb", "::llb_gen::pb")
        .extern_path(".moby.buildkit.v1.apicaps", "::llb_gen::pb::apicaps")
        .compile_fds_with_config(fds, config)
}
