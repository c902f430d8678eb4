//! BuildKit gateway protobuf types and the `LLBBridge` gRPC client,
//! generated at build time from `proto/` (see build.rs).
//!
//! The module tree mirrors the proto packages (generated code refers across
//! packages by relative path); short aliases are re-exported at the top:
//! [`gateway`] (`moby.buildkit.v1.frontend`), [`types`]
//! (`moby.buildkit.v1.types`), [`fsstat`] (`fsutil.types`), [`rpc`]
//! (`google.rpc`) and [`errdefs`]. LLB types are `llb_gen::pb`, capability
//! records `llb_gen::pb::apicaps`, `google.protobuf.Any` is `prost_types::Any`.

#![allow(clippy::all, dead_code, missing_docs, rustdoc::all)]

pub mod moby {
    pub mod buildkit {
        pub mod v1 {
            /// `moby.buildkit.v1.frontend`: the LLBBridge service and its messages.
            pub mod frontend {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.frontend.rs"));
            }
            /// `moby.buildkit.v1.types`: worker records.
            pub mod types {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.types.rs"));
            }
        }
    }
}

pub mod fsutil {
    /// `fsutil.types`: file stat records.
    pub mod types {
        include!(concat!(env!("OUT_DIR"), "/fsutil.types.rs"));
    }
}

pub mod google {
    /// `google.rpc`: the gRPC status message.
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

/// `errdefs`: BuildKit error-detail messages (sent as JSON, see gateway.rs).
pub mod errdefs {
    include!(concat!(env!("OUT_DIR"), "/errdefs.rs"));
}

pub use fsutil::types as fsstat;
pub use google::rpc;
pub use moby::buildkit::v1::frontend as gateway;

/// Re-exports of the llb-gen types the gateway messages embed.
#[allow(unused_imports)]
pub use llb_gen::pb as llb;
#[allow(unused_imports)]
pub use llb_gen::pb::apicaps;
