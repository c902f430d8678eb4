//! Stack-wide checks that do not depend on a target: the `from` graph, the default
//! target, platforms.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::platform::Platform;
use crate::stack::{Kind, Stack, VariantDef};

use super::*;

/// Checks that do not depend on a target: the `from` graph, the default target, platforms.
/// Computed once per stack (and once per variant's stack) however many targets are planned.
pub fn check_stack(stack: &Stack) -> Diagnostics {
    stack
        .checked
        .get_or_init(|| check_stack_once(stack))
        .clone()
}

fn check_stack_once(stack: &Stack) -> Diagnostics {
    let mut diags = Diagnostics::default();
    if crate::version::is_unmet(stack) {
        // A stack for a newer frontend: `parse` reported that, and only that matters.
        return diags;
    }
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
    // Cycles in the `from` graph: every image has at most one layer it is built on, so one
    // walk per image that stops at anything seen before finds every cycle in linear time.
    // Each cycle is reported once, at the first of its images reached from the first image
    // (in file order) that leads into it.
    let index: HashMap<&str, usize> = stack
        .images
        .iter()
        .enumerate()
        .map(|(i, img)| (img.name.value.as_str(), i))
        .rev() // the first of two images with one name wins
        .collect();
    let next = |i: usize| -> Option<usize> {
        let from = stack.images[i].from.as_ref()?;
        index.get(from.value.as_str()).copied()
    };
    // 0: not seen; 1: on the current walk (at `pos[i]`); 2: done.
    let mut state = vec![0u8; stack.images.len()];
    let mut pos = vec![0usize; stack.images.len()];
    for first in 0..stack.images.len() {
        let mut path: Vec<usize> = vec![];
        let mut cur = Some(first);
        while let Some(i) = cur {
            match state[i] {
                2 => break,
                1 => {
                    let cycle: Vec<&str> = path[pos[i]..]
                        .iter()
                        .map(|&j| stack.images[j].name.value.as_str())
                        .collect();
                    let start = &stack.images[i];
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
                    break;
                }
                _ => {
                    state[i] = 1;
                    pos[i] = path.len();
                    path.push(i);
                    cur = next(i);
                }
            }
        }
        for j in path {
            state[j] = 2;
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
