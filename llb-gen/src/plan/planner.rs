//! The planner: [`plan`] walks the target and its bases; the helpers that interpolate and
//! validate single values live here, the per-image parts in sibling modules.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::interp::{Budget, Failure, Unknown, interpolate, interpolate_in, interpolate_shell};
use crate::platform::Platform;
use crate::source::Span;
use crate::stack::{EnvVar, ImageDef, Kind, Sp, Stack, VariantDef};

use super::*;

/// Plan one target. Errors are returned all together.
pub fn plan(stack: &Stack, opts: &BuildOptions) -> Result<Plan, Diagnostics> {
    plan_targets(stack, opts, false)
}

/// Plan every layer and service in one pass, each once (what `check`, `graph`, `bake` and
/// `plan` need; planning each target apart re-plans its bases: quadratic in a deep chain).
/// The variant comes from `opts.target` (`@gpu`, or a target name with it); the plan's
/// `images` hold every image that could be planned, bases before what is built on them.
pub fn plan_every(stack: &Stack, opts: &BuildOptions) -> Result<Plan, Diagnostics> {
    plan_targets(stack, opts, true)
}

fn plan_targets(stack: &Stack, opts: &BuildOptions, every: bool) -> Result<Plan, Diagnostics> {
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
    // The platform's overlays (`[layers.X.platforms."linux/arm64"]`), after the variant's.
    let platform_stack;
    let stack = match stack.with_platform(&opts.platform) {
        Some(s) => {
            platform_stack = s;
            &platform_stack
        }
        None => stack,
    };
    let mut diags = check_stack(stack);
    platform_overlay_keys(stack, &opts.platform, &mut diags);
    if let Some(v) = variant {
        // A `from` the variant's overlay set (a cycle it creates, a service as base) is
        // reported under the overlay's key, where the user wrote it.
        for d in &mut diags.items {
            for o in &v.images {
                let at = format!(
                    "variants.{}.{}.{}",
                    v.name.value,
                    o.kind.table(),
                    o.name.value
                );
                if o.from.as_ref().is_some_and(|f| Some(f.span) == d.span) {
                    d.key = Some(format!("{at}.from"));
                } else if let Some(i) = o
                    .copy
                    .iter()
                    .position(|c| c.from.as_ref().is_some_and(|f| Some(f.span) == d.span))
                {
                    d.key = Some(format!("{at}.copy[{i}].from"));
                }
            }
        }
    }
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
    // Planning every image, the "target" only names the plan: the default if it exists.
    let requested = opts
        .target
        .as_deref()
        .map(|t| split_target(t).0)
        .filter(|t| !t.is_empty() && !every);
    let fallback = || match every {
        false => stack.default_target(),
        true => stack
            .default_target()
            .filter(|t| stack.image(t).is_some())
            .or_else(|| stack.images.first().map(|i| i.name.value.as_str())),
    };
    let target_name = match requested.or_else(fallback) {
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
    let (vars, arg_errors) = arg_values_checked(stack, opts);
    diags.extend(arg_errors);
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
        failed: BTreeSet::new(),
        budget: Budget::plan(),
        platform: opts.platform.clone(),
        build_platform: opts.build_platform.clone(),
        variant,
        includes: &opts.requirement_includes,
        lock_files: &opts.lock_files,
        index_pages: &opts.index_pages,
        image_overrides: &opts.image_overrides,
        named_contexts: &opts.named_contexts,
        image_contexts: &opts.image_contexts,
        used_image_contexts: BTreeMap::new(),
        in_install_env: false,
    };
    pl.python = stack
        .python
        .as_ref()
        .map(|p| pl.text(p, "stack.python"))
        .unwrap_or_else(|| "python3".into());
    pl.stack_install_env = pl.install_env_list(&stack.install_env, "stack.install-env");
    if every {
        for img in &stack.images {
            pl.add(img);
        }
    } else {
        pl.add(target);
    }
    let images = std::mem::take(&mut pl.images);
    let image_contexts = std::mem::take(&mut pl.used_image_contexts);
    let secrets = pl.secrets();
    if images.is_empty() && !diags.has_errors() {
        diags.push(
            Diagnostic::error(format!("target `{target_name}` could not be planned"))
                .at(target.span)
                .key(target.key()),
        );
    }
    platform_overlay_keys(stack, &opts.platform, &mut diags);
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
        image_contexts,
        warnings: warnings.sorted(),
    })
}

/// A `from` (or `copy.from`) that a platform overlay set is reported under the overlay's key
/// (`layers.ml.platforms."linux/arm64".from`), where the user wrote it.
fn platform_overlay_keys(stack: &Stack, platform: &Platform, diags: &mut Diagnostics) {
    for d in &mut diags.items {
        let Some(span) = d.span else { continue };
        for img in &stack.images {
            for o in img.platforms.iter().filter(|o| &o.platform == platform) {
                if o.image.from.as_ref().is_some_and(|f| f.span == span) {
                    d.key = Some(format!("{}.from", o.key));
                } else if let Some(i) = o
                    .image
                    .copy
                    .iter()
                    .position(|c| c.from.as_ref().is_some_and(|f| f.span == span))
                {
                    d.key = Some(format!("{}.copy[{i}].from", o.key));
                }
            }
        }
    }
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
    /// Images that could not be planned (their errors are reported): not tried again.
    pub(super) failed: BTreeSet<String>,
    /// What interpolation may still produce in this plan ([`crate::interp::MAX_PLAN_BYTES`]).
    pub(super) budget: Budget,
    pub(super) platform: Platform,
    /// Where cross-installs run: a platform overlay for it changes the twin of the image.
    pub(super) build_platform: Platform,
    pub(super) variant: Option<&'a VariantDef>,
    /// What requirements files include, as the edge read it.
    pub(super) includes: &'a super::includes::RequirementIncludes,
    /// Lock files as the edge read them ([`BuildOptions::lock_files`]).
    pub(super) lock_files: &'a BTreeMap<String, Option<String>>,
    /// Index pages as the edge fetched them ([`BuildOptions::index_pages`]).
    pub(super) index_pages: &'a BTreeMap<String, Option<String>>,
    /// Base images replaced by named contexts ([`BuildOptions::image_overrides`]).
    pub(super) image_overrides: &'a BTreeMap<String, String>,
    /// The named directory contexts of the build ([`BuildOptions::named_contexts`]).
    pub(super) named_contexts: &'a BTreeMap<String, super::ContextOptions>,
    /// The named contexts that are images ([`BuildOptions::image_contexts`]).
    pub(super) image_contexts: &'a BTreeMap<String, ImageContext>,
    /// The image contexts this plan reads or builds on ([`Plan::image_contexts`]).
    pub(super) used_image_contexts: BTreeMap<String, ImageContext>,
    /// Interpolating `install-env` values (their hint for an unknown name differs).
    pub(super) in_install_env: bool,
}

impl<'a> Planner<'a> {
    pub(super) fn text_with(&mut self, s: &Sp<String>, key: &str, mode: Unknown) -> String {
        // A plain one-line string spans its value plus two quotes: point into it.
        // Otherwise (escapes, triple quotes) point at the whole value.
        let plain = s.span.end - s.span.start == s.value.len() + 2;
        let at = |start: usize, end: usize| {
            if plain {
                Span::new(s.span.start + 1 + start, s.span.start + 1 + end)
            } else {
                s.span
            }
        };
        match interpolate_in(&s.value, self.vars, mode, &mut self.budget) {
            Ok(v) => v,
            Err(f @ Failure::TooLong { start, end, .. }) => {
                self.diags.push(
                    Diagnostic::error(f.too_long_message().unwrap_or_default())
                        .at(at(start, end))
                        .key(key.to_string())
                        .hint("an arg that repeats another arg grows with every repetition; shorten the values"),
                );
                // Nothing of the value is kept: the plan fails, and memory stays bounded.
                String::new()
            }
            Err(Failure::Undefined(undef)) => {
                for u in undef {
                    let mut d = Diagnostic::error(format!("`${{{}}}` is not defined", u.name))
                        .at(at(u.start, u.end))
                        .key(key.to_string());
                    let secret = self.stack.secrets.iter().find(|x| {
                        x.name.value == u.name || x.env.as_ref().is_some_and(|e| e.value == u.name)
                    });
                    d = match secret {
                        // Declaring it as an arg would write the secret into the LLB.
                        Some(x) => d.hint(format!(
                            "`{}` is a secret: it is never interpolated into the build; install steps get it {} (never an arg: args are written into the LLB and the image)",
                            u.name,
                            match (&x.env, &x.target) {
                                (Some(e), _) => format!("as the env var ${} (write $${{{}}} to leave it to the shell)", e.value, e.value),
                                (None, Some(t)) => format!("as the file {}", t.value),
                                (None, None) => format!("as the file /run/secrets/{}", x.name.value),
                            }
                        )),
                        None => {
                            let known: Vec<&str> = self.vars.keys().map(String::as_str).collect();
                            match did_you_mean(&u.name, known.iter().copied()) {
                                Some(sug) => d.hint(format!("did you mean `${{{sug}}}`?")),
                                None if self.in_install_env => d.hint(format!("declare it under [args] (e.g. {} = \"…\"), or write $${{{}}} for the value it has in the install step's env (like $${{PATH}})", u.name, u.name)),
                                None => d.hint(format!("declare it under [args] (e.g. {} = \"…\"), or write $${{{}}} for a literal", u.name, u.name)),
                            }
                        }
                    };
                    self.diags.push(d);
                }
                s.value.clone()
            }
        }
    }

    /// Text run by a shell (`run`, shell-form `cmd`/`entrypoint`, a string `healthcheck`):
    /// build args reach it as shell variables, never as shell code
    /// ([`crate::interp::interpolate_shell`]).
    pub(super) fn shell_text(&mut self, s: &Sp<String>, key: &str) -> String {
        match interpolate_shell(&s.value, self.vars, &mut self.budget) {
            Ok(v) => v,
            Err(f) => {
                let span = match &f {
                    Failure::TooLong { start, end, .. }
                        if s.span.end - s.span.start == s.value.len() + 2 =>
                    {
                        Span::new(s.span.start + 1 + start, s.span.start + 1 + end)
                    }
                    _ => s.span,
                };
                self.diags.push(
                    Diagnostic::error(f.too_long_message().unwrap_or_default())
                        .at(span)
                        .key(key.to_string()),
                );
                String::new()
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

    /// `install-env` values: args are substituted here and an unknown `${NAME}` is an error
    /// (a typo stays visible); `$${NAME}` leaves `${NAME}` for the converter, which
    /// substitutes the env of the install step (`$${PATH}`), as an image's `env` is.
    pub(super) fn install_env_list(&mut self, list: &[EnvVar], key: &str) -> Vec<(String, String)> {
        self.in_install_env = true;
        let out = self.env_list(list, key, Unknown::Error);
        self.in_install_env = false;
        out
    }

    /// A context path as the stack writes it (`PATH` or `NAME:PATH`, see [`ctxpath`]) in
    /// the plan's form: clean, relative, its named context (one the build was given) kept.
    /// In an image context (`tools:/opt/reqs.txt`) the path is absolute in the image.
    pub(super) fn context_path(&mut self, s: &Sp<String>, key: &str) -> String {
        self.context_path_in(s, key, true)
    }

    /// [`Self::context_path`]; without `images`, a named context that is an image is an
    /// error (what the edge reads itself, lock files and Dockerfile builds, comes from
    /// directories).
    pub(super) fn context_path_in(&mut self, s: &Sp<String>, key: &str, images: bool) -> String {
        let v = self.text(s, key);
        match ctxpath::parse_user(&v) {
            Some((name, path)) => {
                let (name, path) = (name.to_string(), path.to_string());
                let image = self.named_context(&name, s.span, key);
                if image && !images {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "`{v}`: the named context `{name}` is an image; this key reads a directory context"
                        ))
                        .at(s.span)
                        .key(key.to_string())
                        .hint(format!("pass a directory, `--build-context {name}=DIR`, or copy the file out of the image into the build context")),
                    );
                }
                let clean = if image {
                    self.image_context_path(&name, &path, s.span, key)
                } else {
                    self.clean_context_path(&path, s.span, key)
                };
                ctxpath::join(Some(&name), &clean)
            }
            None => self.clean_context_path(&v, s.span, key),
        }
    }

    /// `src` of a copy with `context = "NAME"`: a path of that named context, as written
    /// (absolute in an image context, like `copy.from`; relative in a directory).
    pub(super) fn named_context_path(
        &mut self,
        context: &Sp<String>,
        s: &Sp<String>,
        key: &str,
    ) -> String {
        let name = self.text(context, &format!("{key}.context"));
        if !ctxpath::valid_name(&name) {
            self.diags.push(
                Diagnostic::error(format!("`{name}` is not a valid named context"))
                    .at(context.span)
                    .key(format!("{key}.context"))
                    .hint("a context name is letters, digits, `.`, `_` and `-`, like \"svc-api\" (given with --build-context svc-api=DIR)"),
            );
            return String::new();
        }
        let image = self.named_context(&name, context.span, &format!("{key}.context"));
        let v = self.text(s, &format!("{key}.src"));
        let clean = if image {
            self.image_context_path(&name, &v, s.span, &format!("{key}.src"))
        } else {
            self.clean_context_path(&v, s.span, &format!("{key}.src"))
        };
        ctxpath::join(Some(&name), &clean)
    }

    /// A named context the stack reads must be one the build was given; true when it is an
    /// image (recorded in the plan's [`Plan::image_contexts`]).
    fn named_context(&mut self, name: &str, span: Span, key: &str) -> bool {
        if let Some(c) = self.image_contexts.get(name) {
            self.used_image_contexts.insert(name.to_string(), c.clone());
            return true;
        }
        if self.named_contexts.contains_key(name) {
            return false;
        }
        let given: Vec<&str> = self
            .named_contexts
            .keys()
            .chain(self.image_contexts.keys())
            .map(String::as_str)
            .collect();
        let mean = did_you_mean(name, given.iter().copied())
            .map(|m| format!(" (did you mean `{m}`?)"))
            .unwrap_or_default();
        let d = Diagnostic::error(format!(
            "the stack reads the named build context `{name}`, which this build was not given{mean}"
        ))
        .at(span)
        .key(key.to_string())
        .hint(format!(
            "pass `--build-context {name}=DIR` or `--build-context {name}=docker-image://IMAGE` (docker buildx build, llb-gen), or add `contexts = {{ {name} = \"DIR\" }}` (or `\"target:OTHER\"`) to the bake target"
        ));
        self.diags.push(d);
        false
    }

    /// A path in an image context: absolute in the image (`/usr/local/bin/tool`), kept in the
    /// plan without its leading `/` (`.` for `/`), like every context path.
    fn image_context_path(&mut self, name: &str, v: &str, span: Span, key: &str) -> String {
        if !v.starts_with('/') {
            self.diags.push(
                Diagnostic::error(format!(
                    "`{v}` is relative, but the named context `{name}` is an image: its paths are absolute"
                ))
                .at(span)
                .key(key.to_string())
                .hint(format!("write the path in the image from its root, like \"/{}\"", v.trim_start_matches("./"))),
            );
            return ".".into();
        }
        let inner = v.trim_start_matches('/');
        if inner.split('/').any(|c| c == "..") {
            self.diags.push(
                Diagnostic::error(format!(
                    "`{v}`: `..` is not allowed in a path of the image context `{name}`"
                ))
                .at(span)
                .key(key.to_string())
                .hint("write the path without `..`"),
            );
        }
        plan_path(inner)
    }

    fn clean_context_path(&mut self, v: &str, span: Span, key: &str) -> String {
        let trimmed = v.trim_start_matches("./");
        if v.starts_with('/')
            || trimmed.split('/').any(|c| c == "..")
            || trimmed.is_empty() && v != "." && v != "./"
        {
            self.diags.push(
                Diagnostic::error(format!("`{v}` is not a path inside the build context"))
                    .at(span)
                    .key(key.to_string())
                    .hint("use a relative path like \"apps/api\"; `..` and absolute paths cannot leave the context"),
            );
        }
        plan_path(trimmed)
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
        if let Some(c) = self.image_contexts.get(&value)
            && matches!(c, ImageContext::Input(_))
        {
            // Another target's result (bake `contexts = { NAME = "target:OTHER" }`).
            self.used_image_contexts.insert(value.clone(), c.clone());
            return Some(Base::Context {
                name: value,
                span: from.span,
            });
        }
        match normalize_image_ref(&value) {
            Ok(reference) => Some(Base::Image {
                reference: self
                    .image_overrides
                    .get(&reference)
                    .cloned()
                    .unwrap_or(reference),
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
    ///
    /// The images under `img` (its `from` layers and the images it copies from, theirs, …)
    /// are planned first, each after its own, so that planning each one finds what it needs
    /// planned already: a chain of thousands of layers needs no recursion per level.
    pub(super) fn add(&mut self, img: &'a ImageDef) -> Option<usize> {
        if let Some(&i) = self.index.get(&img.name.value) {
            return Some(i);
        }
        if self.failed.contains(&img.name.value) {
            return None;
        }
        for dep in self.unplanned_deps(img) {
            self.add_one(dep);
        }
        self.add_one(img)
    }

    /// The images `img` needs (its `from` layer, the images its copies come from, and
    /// theirs) not planned yet, each after its own (an iterative post-order walk). Stops at
    /// anything else: an image reference, a service as `from`, an `${ARG}` that does not
    /// resolve, a name seen before (cycles are reported by `add_one`).
    fn unplanned_deps(&self, img: &'a ImageDef) -> Vec<&'a ImageDef> {
        let mut order: Vec<&'a ImageDef> = vec![];
        // Images expanded (their deps pushed): each once.
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        // (image, whether its deps were pushed already)
        let mut todo: Vec<(&'a ImageDef, bool)> = vec![(img, false)];
        while let Some((cur, expanded)) = todo.pop() {
            if expanded {
                if !std::ptr::eq(cur, img) {
                    order.push(cur);
                }
                continue;
            }
            if !seen.insert(cur.name.value.as_str()) {
                continue;
            }
            todo.push((cur, true));
            let from = cur.from.iter().map(|f| (f, false)).chain(
                cur.copy
                    .iter()
                    .filter_map(|c| c.from.as_ref().map(|f| (f, true))),
            );
            let mut deps = vec![];
            for (name, copy) in from {
                let Ok(name) = interpolate(&name.value, self.vars, Unknown::Error) else {
                    continue;
                };
                let Some(dep) = self.stack.image(&name) else {
                    continue;
                };
                if (!copy && dep.kind != Kind::Layer)
                    || self.index.contains_key(&dep.name.value)
                    || self.failed.contains(&dep.name.value)
                    || self.in_progress.contains(&dep.name.value)
                    || seen.contains(dep.name.value.as_str())
                {
                    continue;
                }
                deps.push(dep);
            }
            // Reversed, so that the first dependency is planned first.
            todo.extend(deps.into_iter().rev().map(|d| (d, false)));
        }
        order
    }

    fn add_one(&mut self, img: &'a ImageDef) -> Option<usize> {
        if let Some(&i) = self.index.get(&img.name.value) {
            return Some(i);
        }
        if self.failed.contains(&img.name.value) {
            return None;
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
        if added.is_none() {
            self.failed.insert(img.name.value.clone());
        }
        added
    }
}

/// A context path as the plan keeps it: no trailing `/`, `.` for the root.
fn plan_path(p: &str) -> String {
    match p.trim_end_matches('/') {
        "" | "." => ".".into(),
        p => p.to_string(),
    }
}
