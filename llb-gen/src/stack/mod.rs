//! The stack model and its parser: stack.toml → [`Stack`] with spans and diagnostics.

mod limits;
mod model;
mod parse;
pub mod schema;

pub use limits::{MAX_ENTRIES, MAX_FILE_BYTES, MAX_IMAGES, MAX_KEY_DEPTH, MAX_STRING_BYTES};
pub use model::*;
pub use parse::parse;
pub(crate) use parse::valid_arg_name;
