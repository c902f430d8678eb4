//! Subrequests (`docker buildx build --call …`): describe, targets and outline.

use crate::build::{Failure, Inputs};
use crate::gateway::ResultBuilder;
use crate::opts::FrontendOpts;

/// Answer a subrequest by id.
pub fn answer(req: &str, _opts: &FrontendOpts, _inputs: &Inputs) -> Result<ResultBuilder, Failure> {
    Err(Failure::plain(format!(
        "layerstack does not answer the subrequest `{req}` yet"
    )))
}
