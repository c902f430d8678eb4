//! The frontend's version and `[stack] requires`: which frontend versions a stack is written for.
//!
//! Versions follow semver, and so do the image tags (`:X.Y.Z`, `:X.Y`, `:X`): the stack.toml
//! format is stable within a major version (within a minor version while the major is 0, as
//! semver's caret rule has it). A stack that needs a newer frontend says so with a semver
//! requirement, e.g. `requires = ">=0.2"`; a frontend older than that reports exactly that one
//! error, at the `requires` line, instead of a pile of unknown keys.

use semver::{Version, VersionReq};

use crate::diag::Diagnostic;
use crate::stack::Stack;

/// This frontend's (and llb-gen's) version: the workspace version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The outcome of checking `[stack] requires` against [`VERSION`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// No `requires` key.
    Unset,
    /// This version satisfies it.
    Met,
    /// Not a semver requirement (an ordinary error among the others).
    Invalid(Diagnostic),
    /// This version is outside it: the only error worth reporting.
    Unmet(Diagnostic),
}

/// This version, parsed.
pub fn version() -> Version {
    Version::parse(VERSION).expect("CARGO_PKG_VERSION is semver")
}

/// Checks `stack.requires` against this frontend's version.
pub fn check_requires(stack: &Stack) -> Requirement {
    check_against(stack, &version())
}

/// Whether this frontend is too old for the stack (then [`crate::stack::parse`] reported only
/// that, and nothing else about the stack should be).
pub fn is_unmet(stack: &Stack) -> bool {
    matches!(check_requires(stack), Requirement::Unmet(_))
}

/// Checks `stack.requires` against `current` (the frontend's version).
pub fn check_against(stack: &Stack, current: &Version) -> Requirement {
    let Some(req) = &stack.requires else {
        return Requirement::Unset;
    };
    let text = req.value.trim();
    let parsed = match VersionReq::parse(text) {
        Ok(r) => r,
        Err(e) => {
            return Requirement::Invalid(
                Diagnostic::error(format!("`{text}` is not a version requirement: {e}"))
                    .at(req.span)
                    .key("stack.requires")
                    .hint("write a semver requirement such as \">=0.2\" or \">=0.2.1, <2\""),
            );
        }
    };
    if parsed.matches(current) {
        return Requirement::Met;
    }
    Requirement::Unmet(
        Diagnostic::error(format!(
            "this stack requires layerstack {parsed}, but this is layerstack {current}"
        ))
        .at(req.span)
        .key("stack.requires")
        .hint(format!(
            "build it with a newer frontend: point `# syntax=` at a layerstack image tag that \
             satisfies {parsed} (tags are X.Y.Z, X.Y and X), or install a newer llb-gen"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    fn parse(text: &str) -> (Stack, crate::diag::Diagnostics) {
        crate::stack::parse(&SourceFile::new("stack.toml", text))
    }

    const NEWER: &str = "[stack]\nname = \"x\"\nrequires = \">=999.1\"\nfuture-key = 1\n\n\
                         [layers.base]\nfrom = \"python:3.12-slim\"\nnew-thing = true\n";

    #[test]
    fn version_is_the_crate_version() {
        assert_eq!(version().to_string(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn requirement_met_is_silent() {
        let text = format!(
            "[stack]\nrequires = \">={}\"\n[layers.base]\nfrom = \"python:3.12-slim\"\n",
            VERSION
        );
        let (stack, diags) = parse(&text);
        assert!(!diags.has_errors(), "{diags:?}");
        assert_eq!(check_requires(&stack), Requirement::Met);
        assert_eq!(stack.images.len(), 1);
    }

    #[test]
    fn unmet_requirement_is_the_only_error_at_its_line() {
        let file = SourceFile::new("stack.toml", NEWER);
        let (stack, diags) = crate::stack::parse(&file);
        assert_eq!(diags.items.len(), 1, "{diags:?}");
        let d = &diags.items[0];
        let line = d.one_line(&file);
        assert!(
            line.starts_with("stack.toml:3:12: error: stack.requires: this stack requires layerstack >=999.1, but this is layerstack "),
            "{line}"
        );
        assert!(line.contains("X.Y.Z, X.Y and X"), "{line}");
        assert!(stack.images.is_empty(), "the model is not half-understood");
        // The same through the entry points the CLI and the frontend use.
        let checked = crate::check(&file, &crate::plan::BuildOptions::default());
        assert_eq!(checked.error_count(), 1, "{checked:?}");
        let err = crate::load(&file, &crate::plan::BuildOptions::default()).unwrap_err();
        assert_eq!(err.diagnostics.error_count(), 1);
    }

    #[test]
    fn older_and_newer_frontends() {
        let (stack, _) = parse("[stack]\nrequires = \">=0.2, <2\"\n");
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(matches!(
            check_against(&stack, &v("0.1.9")),
            Requirement::Unmet(_)
        ));
        assert_eq!(check_against(&stack, &v("0.2.0")), Requirement::Met);
        assert_eq!(check_against(&stack, &v("1.4.2")), Requirement::Met);
        assert!(matches!(
            check_against(&stack, &v("2.0.0")),
            Requirement::Unmet(_)
        ));
    }

    #[test]
    fn invalid_requirement_is_reported_with_the_rest() {
        let (_, diags) = parse("[stack]\nrequires = \"at least two\"\nbogus = 1\n");
        let msgs: Vec<&str> = diags.items.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("`at least two` is not a version requirement"))
        );
        assert!(msgs.iter().any(|m| m.starts_with("unknown key `bogus`")));
        let (_, diags) = parse("[stack]\nrequires = 2\n");
        assert_eq!(diags.items[0].message, "expected a string, found integer");
    }
}
