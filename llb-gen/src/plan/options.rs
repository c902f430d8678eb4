//! Build options: everything about one request that is not in the stack file, and the
//! build-arg values they give.

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::interp::{Budget, Unknown, interpolate_in};
use crate::platform::Platform;
use crate::stack::Stack;

/// How RUN steps reach the network (`force-network-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    #[default]
    Sandbox,
    Host,
    None,
}

/// Everything about one build request that is not in the stack file.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// `--target`; None = the stack's default target.
    pub target: Option<String>,
    /// The platform the image is for.
    pub platform: Platform,
    /// The platform the build runs on.
    pub build_platform: Platform,
    /// `--build-arg NAME=value`.
    pub build_args: BTreeMap<String, String>,
    /// `--label NAME=value`: added to the final image.
    pub labels: BTreeMap<String, String>,
    pub network: Network,
    /// `--add-host host=ip`.
    pub extra_hosts: Vec<(String, String)>,
    /// `--no-cache`: run every step again.
    pub no_cache: bool,
    /// `--no-cache-filter`: run these images' steps (and of images built on them) again.
    pub no_cache_filter: Vec<String>,
    /// The build context: local name, session and `.dockerignore` patterns.
    pub context: ContextOptions,
    /// How `docker-image://` sources are resolved (`default`, `pull`, `local`).
    pub image_resolve_mode: Option<String>,
    /// The engine has MergeOp (BuildKit ≥ 0.10, cap `mergeop`): services' files are built
    /// independently of their base and merged onto it.
    pub merge: bool,
    /// Pip steps for a platform other than `build_platform` install its wheels on the build
    /// platform (no emulation) where the stack allows it; false forces emulated installs
    /// (`--build-arg LAYERSTACK_CROSS=false`).
    pub cross_install: bool,
    /// Pip steps for the build platform itself are resolved into a lock too and installed as
    /// lock groups, like a foreign platform's (`--build-arg LAYERSTACK_RESOLVE=true`; always
    /// for `--call lock`, which prints the locks). Off by default: they run pip/uv.
    pub resolve: bool,
    /// The files requirements files include (`-r`, `-c`), read by the edge
    /// ([`super::includes`]); empty when the context was not read.
    pub requirement_includes: super::includes::RequirementIncludes,
    /// Lock files (`lock = …`) as the edge read them: context path → text (None: missing,
    /// excluded by `.dockerignore` or not UTF-8). See [`super::locks::lock_paths`]. A path
    /// that is not a key was not read (subrequests that need no packages): its step has no
    /// groups. The build and the CLI read every one.
    pub lock_files: BTreeMap<String, Option<String>>,
    /// The simple-API project pages hash-pinned requirements locks need, as the edge fetched
    /// them ([`super::locks::index_pages`]): page URL → text (None: it could not be fetched).
    /// A page that is not a key was not looked up (the CLI is offline): its pins are errors.
    pub index_pages: BTreeMap<String, Option<String>>,
    /// Base images replaced by named contexts (`--build-context python:3.12-slim=docker-image://…`,
    /// as the Dockerfile frontend lets one override `FROM`): normalised reference as the stack
    /// names it → normalised reference to build on instead.
    pub image_overrides: BTreeMap<String, String>,
    /// Named directory contexts (`--build-context svc-api=../api`): the name a stack reads
    /// them by (`svc-api:requirements.txt`, see [`super::ctxpath`]) → the local source that
    /// serves it, its session and its own `.dockerignore`.
    pub named_contexts: BTreeMap<String, ContextOptions>,
    /// Named contexts whose files are an image's filesystem, for this platform
    /// (`--build-context tools=docker-image://…`, bake `contexts = { x = "target:other" }`):
    /// the name a stack reads them by (`copy = { context = "tools", src = "/usr/bin/x" }`,
    /// `tools:/opt/reqs.txt`) → where the image comes from.
    pub image_contexts: BTreeMap<String, ImageContext>,
}

/// Where a named context that is an image comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImageContext {
    /// `docker-image://REF[@DIGEST]`: a registry (or local store) image, the normalised
    /// reference; its config and digest are resolved at the edge like a base image's.
    Image(String),
    /// `input:NAME`: the frontend input `NAME` the client sent (bake's `target:OTHER`, the
    /// other target's result); the edge hands its definition and config to the converter.
    Input(String),
}

impl ImageContext {
    /// `image docker.io/library/alpine:3.20` / `input 0-base`: how plans show it.
    pub fn describe(&self) -> String {
        match self {
            ImageContext::Image(r) => format!("image {r}"),
            ImageContext::Input(n) => format!("input {n}"),
        }
    }
}

/// `--build-arg NAME=true` (or `1`): a layerstack switch (off by default) turned on.
pub fn switched_on(build_args: &BTreeMap<String, String>, name: &str) -> bool {
    build_args
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// `--build-arg NAME=false` (or `0`): a layerstack switch turned off.
pub fn switched_off(build_args: &BTreeMap<String, String>, name: &str) -> bool {
    build_args
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("false") || v == "0")
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            target: None,
            platform: Platform::linux_amd64(),
            build_platform: Platform::linux_amd64(),
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            network: Network::Sandbox,
            extra_hosts: vec![],
            no_cache: false,
            no_cache_filter: vec![],
            context: ContextOptions::default(),
            image_resolve_mode: None,
            cross_install: true,
            resolve: false,
            requirement_includes: Default::default(),
            lock_files: BTreeMap::new(),
            index_pages: BTreeMap::new(),
            merge: false,
            image_overrides: BTreeMap::new(),
            named_contexts: BTreeMap::new(),
            image_contexts: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// The local source name (`context`).
    pub name: String,
    /// `BUILDKIT_SESSION_ID`, empty outside a frontend.
    pub session_id: String,
    /// Patterns from `.dockerignore`.
    pub exclude_patterns: Vec<String>,
}

/// Names every build has, like Dockerfile's automatic platform args.
pub const BUILTIN_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// Build args that BuildKit clients send on their own; never warned about.
pub(crate) const CLIENT_ARGS: &[&str] = &[
    "LAYERSTACK_MERGE",
    "LAYERSTACK_CROSS",
    "LAYERSTACK_RESOLVE",
    "BUILDKIT_INLINE_CACHE",
    "BUILDKIT_SYNTAX",
    "SOURCE_DATE_EPOCH",
    "BUILDKIT_CONTEXT_KEEP_GIT_DIR",
    "BUILDKIT_MULTI_PLATFORM",
    "BUILDKIT_SBOM_SCAN_CONTEXT",
    "BUILDKIT_SBOM_SCAN_STAGE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "FTP_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "ftp_proxy",
    "all_proxy",
];

/// The arg values of one build: declared defaults, overridden by `--build-arg`, plus built-ins.
pub fn arg_values(stack: &Stack, opts: &BuildOptions) -> BTreeMap<String, String> {
    arg_values_checked(stack, opts).0
}

/// [`arg_values`] and the errors found on the way: a default that grows past the cap of an
/// interpolated value (`A2 = "${A1}${A1}"` doubling per line) is an error at its line, and its
/// value is left empty; a `SOURCE_DATE_EPOCH` that BuildKit cannot use is an error.
pub fn arg_values_checked(
    stack: &Stack,
    opts: &BuildOptions,
) -> (BTreeMap<String, String>, Diagnostics) {
    let mut diags = Diagnostics::default();
    if let Some(e) = opts.build_args.get("SOURCE_DATE_EPOCH")
        && !e.trim().is_empty()
        && let Err(msg) = check_source_date_epoch(e)
    {
        diags.push(
            Diagnostic::error(msg)
                .key("--build-arg SOURCE_DATE_EPOCH")
                .hint(format!("seconds since 1970 in UTC, from 0 to {MAX_SOURCE_DATE_EPOCH} (the end of year 9999)")),
        );
    }
    let mut vars = BTreeMap::new();
    let mut budget = Budget::plan();
    let p = &opts.platform;
    let b = &opts.build_platform;
    vars.insert("TARGETPLATFORM".into(), p.id());
    vars.insert("TARGETOS".into(), p.os.clone());
    vars.insert("TARGETARCH".into(), p.architecture.clone());
    vars.insert(
        "TARGETVARIANT".into(),
        p.variant.clone().unwrap_or_default(),
    );
    vars.insert("BUILDPLATFORM".into(), b.id());
    vars.insert("BUILDOS".into(), b.os.clone());
    vars.insert("BUILDARCH".into(), b.architecture.clone());
    vars.insert("BUILDVARIANT".into(), b.variant.clone().unwrap_or_default());
    for a in &stack.args {
        if BUILTIN_ARGS.contains(&a.name.value.as_str()) {
            continue; // built-ins are set by the build (warned about in check_stack)
        }
        // A default may use the args declared before it and the built-ins (`${A}-x`);
        // names not known yet expand to "" as in a Dockerfile ARG default.
        let v = match opts.build_args.get(&a.name.value) {
            Some(v) => v.clone(),
            None => a
                .default
                .as_ref()
                .map(|d| {
                    match interpolate_in(&d.value, &vars, Unknown::Empty, &mut budget) {
                        Ok(v) => v,
                        Err(f) => {
                            diags.push(
                                Diagnostic::error(f.too_long_message().unwrap_or_default())
                                    .at(d.span)
                                    .key(format!("args.{}", a.name.value))
                                    .hint("each `${…}` repeats the whole value of that arg; shorten the chain"),
                            );
                            String::new()
                        }
                    }
                })
                .unwrap_or_default(),
        };
        vars.insert(a.name.value.clone(), v);
    }
    (vars, diags)
}

/// The largest `SOURCE_DATE_EPOCH`: 9999-12-31T23:59:59Z (later times have no RFC 3339 form).
pub const MAX_SOURCE_DATE_EPOCH: i64 = 253_402_300_799;

/// A `SOURCE_DATE_EPOCH` value is whole seconds from 0 to [`MAX_SOURCE_DATE_EPOCH`].
pub fn check_source_date_epoch(v: &str) -> Result<i64, String> {
    match v.trim().parse::<i64>() {
        Ok(n) if (0..=MAX_SOURCE_DATE_EPOCH).contains(&n) => Ok(n),
        Ok(_) => Err(format!(
            "SOURCE_DATE_EPOCH `{v}` is outside 0..={MAX_SOURCE_DATE_EPOCH} (1970 to the end of year 9999)"
        )),
        Err(_) => Err(format!(
            "SOURCE_DATE_EPOCH `{v}` is not a whole number of seconds"
        )),
    }
}
