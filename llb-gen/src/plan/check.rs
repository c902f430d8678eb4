//! Stack-wide checks that do not depend on a target: the `from` graph, the default
//! target, platforms.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::platform::Platform;
use crate::source::Span;
use crate::stack::{EnvVar, ImageDef, Kind, Sp, Stack, VariantDef};

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
        if img.dockerfile.is_some() {
            check_dockerfile_image(img, &mut diags);
            continue;
        }
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
    // `copy.from`: a layer or service of this stack (an `${ARG}` is checked after planning
    // interpolates it).
    for img in &stack.images {
        for (i, c) in img.copy.iter().enumerate() {
            let Some(from) = &c.from else { continue };
            if from.value.contains('$') || stack.image(&from.value).is_some() {
                continue;
            }
            diags.push(unknown_copy_source(
                stack,
                &from.value,
                from.span,
                format!("{}.copy[{i}].from", img.key()),
            ));
        }
    }
    diags.extend(dependency_cycles(stack));
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
    if let Some(d) = &stack.default_target
        && stack.image(&d.value).is_none()
    {
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
    // A platform overlay for a platform the stack is never built for is a typo or dead code
    // (when the stack names its platforms at all: in [stack] or a variant).
    let declared: Vec<Platform> = stack
        .platforms
        .iter()
        .chain(stack.variants.iter().flat_map(|v| v.platforms.iter()))
        .filter_map(|p| Platform::parse(&p.value).ok())
        .collect();
    if !declared.is_empty() {
        for img in &stack.images {
            for o in &img.platforms {
                if !declared.contains(&o.platform) {
                    let mut list: Vec<String> = declared.iter().map(Platform::id).collect();
                    list.sort();
                    list.dedup();
                    diags.push(
                        Diagnostic::error(format!(
                            "`{}` has an overlay for {}, which this stack is not built for",
                            img.name.value, o.platform
                        ))
                        .at(o.written.span)
                        .key(o.key.clone())
                        .hint(format!(
                            "its platforms: {}; add {} to [stack] platforms (or a variant's), or remove the overlay",
                            list.join(", "),
                            o.platform
                        )),
                    );
                }
            }
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

/// `copy.from` names no layer or service: an error with "did you mean".
pub(super) fn unknown_copy_source(
    stack: &Stack,
    name: &str,
    span: Span,
    key: String,
) -> Diagnostic {
    let d = Diagnostic::error(format!(
        "`{name}` is not a layer or service of this stack; `copy.from` copies out of one"
    ))
    .at(span)
    .key(key);
    let names = stack.images.iter().map(|i| i.name.value.as_str());
    match did_you_mean(name, names) {
        Some(s) => d.hint(format!("did you mean `{s}`?")),
        None => d.hint(format!(
            "to copy out of an image reference, declare a layer `from = \"{name}\"` and copy from it; {}",
            valid_targets_hint(stack)
        )),
    }
}

/// One edge of the dependency graph: an image's `from` (a layer) or a `copy[i].from`.
struct Edge {
    to: usize,
    span: Span,
    key: String,
    copy: bool,
}

/// Cycles in the graph of `from` and `copy.from` edges, each reported once, at the edge that
/// leaves the first of its images reached (in file order). An iterative depth-first walk
/// (a chain of thousands of layers needs no recursion), linear in images plus edges.
fn dependency_cycles(stack: &Stack) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let index: HashMap<&str, usize> = stack
        .images
        .iter()
        .enumerate()
        .map(|(i, img)| (img.name.value.as_str(), i))
        .rev() // the first of two images with one name wins
        .collect();
    let edges: Vec<Vec<Edge>> = stack
        .images
        .iter()
        .map(|img| {
            let mut out = vec![];
            if let Some(from) = &img.from
                && let Some(&to) = index.get(from.value.as_str())
            {
                out.push(Edge {
                    to,
                    span: from.span,
                    key: format!("{}.from", img.key()),
                    copy: false,
                });
            }
            for (i, c) in img.copy.iter().enumerate() {
                if let Some(from) = &c.from
                    && let Some(&to) = index.get(from.value.as_str())
                {
                    out.push(Edge {
                        to,
                        span: from.span,
                        key: format!("{}.copy[{i}].from", img.key()),
                        copy: true,
                    });
                }
            }
            out
        })
        .collect();
    // 0: not seen; 1: on the current path; 2: done.
    let mut state = vec![0u8; stack.images.len()];
    for first in 0..stack.images.len() {
        if state[first] != 0 {
            continue;
        }
        // (image, the index of its next edge to follow)
        let mut path: Vec<(usize, usize)> = vec![(first, 0)];
        state[first] = 1;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let Some(edge) = edges[node].get(*next) else {
                state[node] = 2;
                path.pop();
                continue;
            };
            *next += 1;
            match state[edge.to] {
                0 => {
                    state[edge.to] = 1;
                    path.push((edge.to, 0));
                }
                1 => {
                    let at = path
                        .iter()
                        .position(|(n, _)| *n == edge.to)
                        .expect("on the path");
                    // Each image on the cycle, with the edge it leaves by (the last one
                    // followed, `next - 1`, or this one for the current image).
                    let cycle: Vec<(usize, &Edge)> = path[at..]
                        .iter()
                        .map(|&(n, e)| (n, &edges[n][e - 1]))
                        .collect();
                    let copy = cycle.iter().any(|(_, e)| e.copy);
                    let mut text = String::new();
                    for (n, e) in &cycle {
                        text.push_str(&stack.images[*n].name.value);
                        text.push_str(if e.copy { " ⇢ " } else { " → " });
                    }
                    text.push_str(&stack.images[edge.to].name.value);
                    let (_, start) = cycle[0];
                    diags.push(
                        Diagnostic::error(if cycle.len() == 1 && copy {
                            format!(
                                "`{}` copies from itself",
                                stack.images[edge.to].name.value
                            )
                        } else if copy {
                            format!("dependency cycle (→ from, ⇢ copy.from): {text}")
                        } else {
                            format!("`from` cycle: {text}")
                        })
                        .at(start.span)
                        .key(start.key.clone())
                        .hint(if copy {
                            "an image cannot copy from itself or from an image built on it or copying from it; break the cycle"
                        } else {
                            "a layer cannot be built on itself; break the cycle"
                        }),
                    );
                }
                _ => {}
            }
        }
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

/// An image built from a Dockerfile: BuildKit's Dockerfile frontend makes all of it, so none
/// of the keys that add steps or config can apply.
fn check_dockerfile_image(img: &ImageDef, diags: &mut Diagnostics) {
    let first = |v: &[Sp<String>]| v.first().map(|s| s.span);
    let env = |v: &[EnvVar]| v.first().map(|e| e.name.span);
    let set: [(&str, Option<Span>); 26] = [
        ("from", img.from.as_ref().map(|s| s.span)),
        ("apt", first(&img.apt)),
        (
            "apt-recommends",
            img.apt_recommends.as_ref().map(|s| s.span),
        ),
        ("apt-sources", img.apt_sources.first().map(|s| s.span)),
        ("user", img.user.as_ref().map(|u| u.span)),
        ("workdir", img.workdir.as_ref().map(|s| s.span)),
        ("run", img.run.first().map(|r| r.span)),
        ("requirements", first(&img.requirements)),
        ("pip", first(&img.pip)),
        ("index-url", img.index_url.as_ref().map(|s| s.span)),
        ("extra-index-urls", first(&img.extra_index_urls)),
        ("install-env", env(&img.install_env)),
        ("env", env(&img.env)),
        ("copy", img.copy.first().map(|c| c.span)),
        ("cmd", img.cmd.as_ref().map(|s| s.span)),
        ("entrypoint", img.entrypoint.as_ref().map(|s| s.span)),
        ("expose", first(&img.expose)),
        ("healthcheck", img.healthcheck.as_ref().map(|h| h.span)),
        ("labels", env(&img.labels)),
        ("stop-signal", img.stop_signal.as_ref().map(|s| s.span)),
        ("venv", img.venv.as_ref().map(|v| v.span)),
        ("torch", img.torch.as_ref().map(|s| s.span)),
        ("installer", img.installer.as_ref().map(|s| s.span)),
        ("conda", img.conda.as_ref().map(|c| c.span)),
        ("cross-install", img.cross_install.as_ref().map(|s| s.span)),
        ("resolve", img.resolve.as_ref().map(|s| s.span)),
    ];
    for (key, span) in set {
        if let Some(span) = span {
            diags.push(
                Diagnostic::error(format!(
                    "{} `{}` is built from a Dockerfile; `{key}` cannot be combined with `dockerfile`",
                    img.kind.as_str(),
                    img.name.value
                ))
                .at(span)
                .key(format!("{}.{key}", img.key()))
                .hint(format!(
                    "put it in the Dockerfile, or define another image with from = \"{}\" that adds it",
                    img.name.value
                )),
            );
        }
    }
}
