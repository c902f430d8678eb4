//! Target and variant selection: `api@cuda` → the image and the variant it builds.

use crate::diag::{Diagnostic, did_you_mean};
use crate::stack::{Stack, VariantDef};

/// `api@cuda` → (`api`, Some(`cuda`)).
pub fn split_target(t: &str) -> (&str, Option<&str>) {
    match t.split_once('@') {
        Some((name, variant)) => (name, Some(variant)),
        None => (t, None),
    }
}

/// The variant a target selects (`api@cuda`), or the stack's default variant.
pub fn select_variant<'s>(
    stack: &'s Stack,
    target: Option<&str>,
) -> Result<Option<&'s VariantDef>, Diagnostic> {
    let requested = target.and_then(|t| split_target(t).1);
    match requested {
        None => Ok(stack.default_variant()),
        Some(v) => match stack.variant(v) {
            Some(var) => Ok(Some(var)),
            None => {
                let names: Vec<&str> = stack
                    .variants
                    .iter()
                    .map(|v| v.name.value.as_str())
                    .collect();
                let mut d =
                    Diagnostic::error(format!("variant `{v}` is not defined")).key("--target");
                d = if names.is_empty() {
                    d.hint("this stack has no [variants]; use the target name alone")
                } else {
                    let list = format!("variants: {}", names.join(", "));
                    match did_you_mean(v, names.iter().copied()) {
                        Some(s) => d.hint(format!("did you mean `{s}`? {list}")),
                        None => d.hint(list),
                    }
                };
                Err(d)
            }
        },
    }
}
