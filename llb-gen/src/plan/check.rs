//! Stack-wide checks that do not depend on a target: the `from` graph, the default
//! target, platforms.

use std::collections::BTreeSet;

use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::platform::Platform;
use crate::stack::{ImageDef, Kind, Stack, VariantDef};

use super::*;

/// Checks that do not depend on a target: the `from` graph, the default target, platforms.
pub fn check_stack(stack: &Stack) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let names: Vec<&str> = stack.images.iter().map(|i| i.name.value.as_str()).collect();
    for img in &stack.images {
        match &img.from {
            None => diags.push(
                Diagnostic::error(format!(
                    "{} `{}` has no `from`",
                    img.kind.as_str(),
                    img.name.value
                ))
                .at(img.span)
                .key(format!("{}.from", img.key()))
                .hint("add from = \"python:3.12-slim\" or the name of a layer"),
            ),
            Some(from) => {
                if let Some(target) = stack.image(&from.value) {
                    if target.kind == Kind::Service {
                        diags.push(
                            Diagnostic::error(format!(
                                "`{}` is a service; only layers can be built on",
                                from.value
                            ))
                            .at(from.span)
                            .key(format!("{}.from", img.key()))
                            .hint(format!(
                                "move [services.{}] to [layers.{}]",
                                from.value, from.value
                            )),
                        );
                    }
                } else if !from.value.contains(['/', ':', '@', '$']) && !from.value.contains('.') {
                    // A bare word that is no layer: probably a typo of a layer name.
                    if let Some(s) = did_you_mean(
                        &from.value,
                        names.iter().copied().filter(|n| *n != img.name.value),
                    ) {
                        diags.push(
                            Diagnostic::warning(format!(
                                "`{}` is not a layer of this stack; it will be pulled as an image",
                                from.value
                            ))
                            .at(from.span)
                            .key(format!("{}.from", img.key()))
                            .hint(format!("did you mean the layer `{s}`?")),
                        );
                    }
                }
            }
        }
    }
    // Cycles in the `from` graph.
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for img in &stack.images {
        let mut path: Vec<&ImageDef> = vec![img];
        let mut cur = img;
        while let Some(next) = cur.from.as_ref().and_then(|f| stack.image(&f.value)) {
            if let Some(pos) = path.iter().position(|p| p.name.value == next.name.value) {
                let cycle: Vec<&str> = path[pos..].iter().map(|p| p.name.value.as_str()).collect();
                let mut key = cycle.clone();
                key.sort();
                if reported.insert(key.join(",")) {
                    let start = path[pos];
                    let from = start.from.as_ref().expect("in a cycle");
                    diags.push(
                        Diagnostic::error(format!(
                            "`from` cycle: {} → {}",
                            cycle.join(" → "),
                            cycle[0]
                        ))
                        .at(from.span)
                        .key(format!("{}.from", start.key()))
                        .hint("a layer cannot be built on itself; break the cycle"),
                    );
                }
                break;
            }
            path.push(next);
            cur = next;
        }
    }
    let defaults: Vec<&VariantDef> = stack
        .variants
        .iter()
        .filter(|v| v.default.as_ref().is_some_and(|d| d.value))
        .collect();
    if defaults.len() > 1 {
        diags.push(
            Diagnostic::warning(format!(
                "{} variants say `default = true`; the first, `{}`, is used",
                defaults.len(),
                defaults[0].name.value
            ))
            .at(defaults[1].name.span)
            .key(format!("variants.{}.default", defaults[1].name.value))
            .hint("mark one variant as the default"),
        );
    }
    for v in &stack.variants {
        for p in &v.platforms {
            if let Err(e) = Platform::parse(&p.value) {
                diags.push(
                    Diagnostic::error(e)
                        .at(p.span)
                        .key(format!("variants.{}.platforms", v.name.value))
                        .hint("e.g. \"linux/amd64\" or \"linux/arm64\""),
                );
            }
        }
        for o in &v.images {
            let key = format!(
                "variants.{}.{}.{}",
                v.name.value,
                o.kind.table(),
                o.name.value
            );
            match stack.image(&o.name.value) {
                None => diags.push(
                    Diagnostic::error(format!(
                        "variant `{}` changes `{}`, which is not a layer or service",
                        v.name.value, o.name.value
                    ))
                    .at(o.name.span)
                    .key(key)
                    .hint(valid_targets_hint(stack)),
                ),
                Some(img) if img.kind != o.kind => diags.push(
                    Diagnostic::error(format!(
                        "`{}` is a {}; write its overlay under [variants.{}.{}]",
                        o.name.value,
                        img.kind.as_str(),
                        v.name.value,
                        img.kind.table()
                    ))
                    .at(o.name.span)
                    .key(key),
                ),
                Some(_) => {}
            }
        }
    }
    for a in &stack.args {
        if BUILTIN_ARGS.contains(&a.name.value.as_str()) {
            diags.push(
                Diagnostic::warning(format!("`{}` is set by the build; this declaration is ignored", a.name.value))
                    .at(a.name.span)
                    .key(format!("args.{}", a.name.value))
                    .hint("built-in args come from --platform and the builder; remove it or pick another name"),
            );
        }
    }
    if let Some(d) = &stack.default_target {
        if stack.image(&d.value).is_none() {
            diags.push(
                Diagnostic::error(format!(
                    "default target `{}` is not a layer or service",
                    d.value
                ))
                .at(d.span)
                .key("stack.default")
                .hint(valid_targets_hint(stack)),
            );
        }
    }
    for p in &stack.platforms {
        if let Err(e) = Platform::parse(&p.value) {
            diags.push(
                Diagnostic::error(e)
                    .at(p.span)
                    .key("stack.platforms")
                    .hint("e.g. \"linux/amd64\" or \"linux/arm64\""),
            );
        }
    }
    if stack.images.is_empty() {
        diags.push(
            Diagnostic::error("the stack defines no layers and no services")
                .hint("add a [services.NAME] table with `from`"),
        );
    }
    diags
}

pub fn valid_targets_hint(stack: &Stack) -> String {
    let names: Vec<String> = stack
        .images
        .iter()
        .map(|i| format!("{} ({})", i.name.value, i.kind.as_str()))
        .collect();
    if names.is_empty() {
        "the stack has no layers or services".into()
    } else {
        format!("valid targets: {}", names.join(", "))
    }
}
