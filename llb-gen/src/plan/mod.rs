//! Stack + build options → [`Plan`]: one target's images in build order, every string
//! interpolated, every step named and located. Still plain data: no LLB here.
//!
//! - [`model`]: the plan's data; [`options`]: the request's options and build-arg values;
//! - [`select`]: target/variant selection; [`check`]: stack-wide checks;
//! - [`planner`] (with [`steps`], [`python`], [`torch`], [`config`]): the planner itself;
//! - [`locks`]: `lock = …` (lock files the edge reads, selected and grouped for the target);
//! - [`resources`]: what the plan uses (context reads, caches, secrets), as data with spans;
//! - [`values`]: value parsers without planner state; [`ctxpath`]: context paths that name
//!   their (named) build context.

pub mod check;
pub mod config;
pub mod ctxpath;
pub mod includes;
pub mod locks;
pub mod model;
pub mod options;
pub mod planner;
pub mod python;
pub mod resources;
pub mod select;
pub mod steps;
pub mod torch;
pub mod values;

#[cfg(test)]
mod tests;

pub use check::*;
pub use model::*;
pub(crate) use options::CLIENT_ARGS;
pub use options::*;
use planner::Planner;
pub use planner::{plan, plan_every};
pub use resources::{CacheKind, CacheUse, ContextRead, Sharing};
pub use select::*;
pub(crate) use values::normalize_port;
pub use values::*;
