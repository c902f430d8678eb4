//! The stack model and its parser: stack.toml → [`Stack`] with spans and diagnostics.

mod model;
mod parse;
pub mod schema;

pub use model::*;
pub use parse::parse;
pub(crate) use parse::valid_arg_name;
