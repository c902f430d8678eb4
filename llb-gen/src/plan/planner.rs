//! The planner: [`plan`] walks the target and its bases; the helpers that interpolate and
//! validate single values live here, the per-image parts in sibling modules.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::interp::{Unknown, interpolate};
use crate::platform::Platform;
use crate::source::Span;
use crate::stack::{EnvVar, ImageDef, Kind, Sp, Stack, VariantDef};

use super::*;

/// Plan one target. Errors are returned all together.
pub fn plan(stack: &Stack, opts: &BuildOptions) -> Result<Plan, Diagnostics> {
    let variant = match select_variant(stack, opts.target.as_deref()) {
        Ok(v) => v,
        Err(d) => {
            let mut diags = check_stack(stack);
            diags.push(d);
            return Err(diags.sorted());
        }
    };
    let variant_stack;
    let stack = match variant {
        Some(v) => {
            variant_stack = stack.with_variant(v);
            &variant_stack
        }
        None => stack,
    };
    let mut diags = check_stack(stack);
    if let Some(v) = variant {
        let platforms: Vec<Platform> = v
            .platforms
            .iter()
            .filter_map(|p| Platform::parse(&p.value).ok())
            .collect();
        if !platforms.is_empty() && !platforms.contains(&opts.platform) {
            let list: Vec<String> = platforms.iter().map(Platform::id).collect();
            diags.push(
                Diagnostic::error(format!(
                    "variant `{}` is not built for {}",
                    v.name.value, opts.platform
                ))
                .at(v
                    .platforms
                    .iter()
                    .map(|p| p.span)
                    .reduce(Span::join)
                    .unwrap_or(v.span))
                .key(format!("variants.{}.platforms", v.name.value))
                .hint(format!("its platforms: {}", list.join(", "))),
            );
        }
    }
    let target_name = match opts
        .target
        .as_deref()
        .map(|t| split_target(t).0)
        .filter(|t| !t.is_empty())
        .or_else(|| stack.default_target())
    {
        Some(t) => t.to_string(),
        None => {
            diags.push(Diagnostic::error("nothing to build").hint(valid_targets_hint(stack)));
            return Err(diags.sorted());
        }
    };
    let Some(target) = stack.image(&target_name) else {
        let mut d = Diagnostic::error(format!(
            "target `{target_name}` is not a layer or service of this stack"
        ))
        .key("--target");
        let names: Vec<&str> = stack.images.iter().map(|i| i.name.value.as_str()).collect();
        d = match did_you_mean(&target_name, names.iter().copied()) {
            Some(s) => d.hint(format!("did you mean `{s}`? {}", valid_targets_hint(stack))),
            None => d.hint(valid_targets_hint(stack)),
        };
        diags.push(d);
        return Err(diags.sorted());
    };
    if diags.has_errors() {
        return Err(diags.sorted());
    }
    let vars = arg_values(stack, opts);
    let mut warnings = Diagnostics::default();
    for name in opts.build_args.keys() {
        if BUILTIN_ARGS.contains(&name.as_str()) {
            warnings.push(
                Diagnostic::warning(format!(
                    "build arg `{name}` is set by the build; --build-arg cannot override it"
                ))
                .key(format!("args.{name}"))
                .hint("use --platform to choose the target platform"),
            );
        } else if !vars.contains_key(name) && !CLIENT_ARGS.contains(&name.as_str()) {
            warnings.push(
                Diagnostic::warning(format!(
                    "build arg `{name}` is not declared in [args]; it is ignored"
                ))
                .key(format!("args.{name}"))
                .hint("declare it under [args] to use it"),
            );
        }
    }
    let mut pl = Planner {
        stack,
        vars: &vars,
        diags: &mut diags,
        images: vec![],
        index: BTreeMap::new(),
        python: String::new(),
        stack_install_env: vec![],
        in_progress: BTreeSet::new(),
        platform: opts.platform.clone(),
        variant,
    };
    pl.python = stack
        .python
        .as_ref()
        .map(|p| pl.text(p, "stack.python"))
        .unwrap_or_else(|| "python3".into());
    pl.stack_install_env = pl.env_list(&stack.install_env, "stack.install-env", Unknown::Error);
    pl.add(target);
    let images = std::mem::take(&mut pl.images);
    let secrets = pl.secrets();
    if images.is_empty() && !diags.has_errors() {
        diags.push(
            Diagnostic::error(format!("target `{target_name}` could not be planned"))
                .at(target.span)
                .key(target.key()),
        );
    }
    if diags.has_errors() || images.is_empty() {
        return Err(diags.sorted());
    }
    warnings.extend(diags);
    Ok(Plan {
        target: target_name,
        platform: opts.platform.clone(),
        variant: variant.map(|v| v.name.value.clone()),
        secrets,
        images,
        warnings: warnings.sorted(),
    })
}

pub(super) struct Planner<'a> {
    pub(super) stack: &'a Stack,
    pub(super) vars: &'a BTreeMap<String, String>,
    pub(super) diags: &'a mut Diagnostics,
    pub(super) images: Vec<PlanImage>,
    pub(super) index: BTreeMap<String, usize>,
    pub(super) python: String,
    pub(super) stack_install_env: Vec<(String, String)>,
    pub(super) in_progress: BTreeSet<String>,
    pub(super) platform: Platform,
    pub(super) variant: Option<&'a VariantDef>,
}

impl<'a> Planner<'a> {
    pub(super) fn text_with(&mut self, s: &Sp<String>, key: &str, mode: Unknown) -> String {
        match interpolate(&s.value, self.vars, mode) {
            Ok(v) => v,
            Err(undef) => {
                for u in undef {
                    // A plain one-line string spans its value plus two quotes: point into it.
                    // Otherwise (escapes, triple quotes) point at the whole value.
                    let plain = s.span.end - s.span.start == s.value.len() + 2;
                    let (start, end) = if plain {
                        (s.span.start + 1 + u.start, s.span.start + 1 + u.end)
                    } else {
                        (s.span.start, s.span.end)
                    };
                    let mut d = Diagnostic::error(format!("`${{{}}}` is not defined", u.name))
                        .at(Span::new(start, end))
                        .key(key.to_string());
                    let known: Vec<&str> = self.vars.keys().map(String::as_str).collect();
                    d = match did_you_mean(&u.name, known.iter().copied()) {
                        Some(sug) => d.hint(format!("did you mean `${{{sug}}}`?")),
                        None => d.hint(format!("declare it under [args] (e.g. {} = \"…\"), or write $${{{}}} for a literal", u.name, u.name)),
                    };
                    self.diags.push(d);
                }
                s.value.clone()
            }
        }
    }

    pub(super) fn text(&mut self, s: &Sp<String>, key: &str) -> String {
        self.text_with(s, key, Unknown::Error)
    }

    pub(super) fn texts(&mut self, list: &[Sp<String>], key: &str) -> Vec<String> {
        list.iter().map(|s| self.text(s, key)).collect()
    }

    pub(super) fn env_list(
        &mut self,
        list: &[EnvVar],
        key: &str,
        mode: Unknown,
    ) -> Vec<(String, String)> {
        list.iter()
            .map(|e| {
                (
                    e.name.value.clone(),
                    self.text_with(&e.value, &format!("{key}.{}", e.name.value), mode),
                )
            })
            .collect()
    }

    pub(super) fn context_path(&mut self, s: &Sp<String>, key: &str) -> String {
        let v = self.text(s, key);
        let trimmed = v.trim_start_matches("./");
        if v.starts_with('/')
            || trimmed.split('/').any(|c| c == "..")
            || trimmed.is_empty() && v != "." && v != "./"
        {
            self.diags.push(
                Diagnostic::error(format!("`{v}` is not a path inside the build context"))
                    .at(s.span)
                    .key(key.to_string())
                    .hint("use a relative path like \"apps/api\"; `..` and absolute paths cannot leave the context"),
            );
        }
        let trimmed = trimmed.trim_end_matches('/');
        if trimmed.is_empty() || trimmed == "." {
            ".".into()
        } else {
            trimmed.to_string()
        }
    }

    pub(super) fn base(&mut self, from: &Sp<String>, key: &str) -> Option<Base> {
        let before = self.diags.error_count();
        let value = self.text(from, key);
        if self.diags.error_count() > before {
            return None;
        }
        if let Some(layer) = self.stack.image(&value) {
            if layer.kind == Kind::Service {
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{value}` is a service; only layers can be built on"
                    ))
                    .at(from.span)
                    .key(key.to_string())
                    .hint(format!("move [services.{value}] to [layers.{value}]")),
                );
                return None;
            }
            let index = self.add(layer)?;
            return Some(Base::Layer {
                index,
                name: value,
                span: from.span,
            });
        }
        match normalize_image_ref(&value) {
            Ok(reference) => Some(Base::Image {
                reference,
                span: from.span,
            }),
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(format!("`{value}` is neither a layer of this stack nor a valid image reference: {e}"))
                        .at(from.span)
                        .key(key.to_string())
                        .hint("image references look like python:3.12-slim or ghcr.io/org/base:v1"),
                );
                None
            }
        }
    }

    /// Plan an image (after its bases); returns its index. Cycles were rejected before.
    pub(super) fn add(&mut self, img: &'a ImageDef) -> Option<usize> {
        if let Some(&i) = self.index.get(&img.name.value) {
            return Some(i);
        }
        // A cycle that only shows after interpolation (`from = "${SELF}"`).
        if !self.in_progress.insert(img.name.value.clone()) {
            let from = img.from.as_ref().map(|f| f.span).unwrap_or(img.span);
            self.diags.push(
                Diagnostic::error(format!("`from` cycle through `{}`", img.name.value))
                    .at(from)
                    .key(format!("{}.from", img.key()))
                    .hint("a layer cannot be built on itself; break the cycle"),
            );
            return None;
        }
        let added = self.add_new(img);
        self.in_progress.remove(&img.name.value);
        added
    }
}
