//! AFL++ target (coverage-guided, via `cargo afl`): the same pipeline as `fuzz-stack`.
//!
//! ```text
//! cargo afl build --release --manifest-path fuzz/Cargo.toml --features afl --bin afl-stack
//! fuzz/run-afl.sh 600
//! ```

fn main() {
    afl::fuzz!(|data: &[u8]| {
        layerstack_fuzz::run_one(data);
    });
}
