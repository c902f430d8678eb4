//! The frontend's modules as a library: `main.rs` runs them against BuildKit's gateway, and the
//! fuzzer (`fuzz/`, `fuzz-frontend`) drives option parsing and the subrequest answers directly.

pub mod build;
pub mod checks;
pub mod dockerfile;
pub mod gateway;
pub mod index_pages;
pub mod lint;
pub mod named_contexts;
pub mod opts;
pub mod pb;
pub mod request;
pub mod subrequests;
