//! Stack + build options → [`Plan`]: one target's images in build order, every string
//! interpolated, every step named and located. Still plain data: no LLB here.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::interp::{Unknown, interpolate};
use crate::platform::Platform;
use crate::source::Span;
use crate::stack::{Chown, Command, EnvVar, ImageDef, Kind, Sp, Stack, TorchUse, VariantDef};

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
            merge: false,
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

/// One target's build: images in dependency order, the target last.
#[derive(Clone, Debug)]
pub struct Plan {
    pub target: String,
    pub platform: Platform,
    /// The variant built (`cpu`, `cuda`), when the stack has variants.
    pub variant: Option<String>,
    /// Secrets every install step gets.
    pub secrets: Vec<SecretPlan>,
    pub images: Vec<PlanImage>,
    /// Warnings found while planning (unused build args, …).
    pub warnings: Diagnostics,
}

impl Plan {
    /// Every image reference the plan builds on, for resolving their configs first.
    pub fn image_refs(&self) -> BTreeSet<String> {
        let mut refs = BTreeSet::new();
        for img in &self.images {
            if let Base::Image { reference, .. } = &img.base {
                refs.insert(reference.clone());
            }
            if let Some(v) = &img.venv {
                if let Base::Image { reference, .. } = &v.builder {
                    refs.insert(reference.clone());
                }
            }
        }
        refs
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// A registry image, normalised (`docker.io/library/python:3.12-slim`).
    Image { reference: String, span: Span },
    /// An earlier image of the same plan.
    Layer {
        index: usize,
        name: String,
        span: Span,
    },
}

#[derive(Clone, Debug)]
pub struct PlanImage {
    pub name: String,
    pub kind: Kind,
    /// `layers.ml`
    pub key: String,
    pub span: Span,
    pub description: Option<String>,
    pub base: Base,
    pub steps: Vec<Step>,
    pub config: ConfigChanges,
    pub venv: Option<VenvPlan>,
    /// Env for this image's install steps only.
    pub install_env: Vec<(String, String)>,
    /// The user this image runs as, as declared in this stack (own or inherited from a layer).
    pub declared_user: Option<String>,
    /// Pip steps for a foreign platform may install on the build platform (`cross-install`).
    pub cross_install: bool,
}

impl PlanImage {
    /// `[layer ml]`, the prefix of every vertex name of this image.
    pub fn label(&self) -> String {
        format!("{} {}", self.kind.as_str(), self.name)
    }
}

/// Image config set by one image (applied on top of its base's config).
#[derive(Clone, Debug, Default)]
pub struct ConfigChanges {
    /// Values may still hold `${VAR}` references to the env as it is when applied.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub exposed_ports: Vec<String>,
    /// Some(None) disables an inherited healthcheck.
    pub healthcheck: Option<Option<Healthcheck>>,
    pub labels: Vec<(String, String)>,
    pub stop_signal: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    pub interval_ns: Option<u64>,
    pub timeout_ns: Option<u64>,
    pub start_period_ns: Option<u64>,
    pub retries: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub kind: StepKind,
    /// The stack.toml text that declared the step.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepKind {
    Apt {
        packages: Vec<String>,
    },
    CreateUser(UserPlan),
    Mkdir {
        path: String,
        owner: Option<String>,
    },
    Run {
        command: String,
        /// Context paths the command reads: mounted at its working directory.
        context: Vec<String>,
    },
    Pip(PipStep),
    /// A conda environment file installed with micromamba/mamba/conda.
    Conda(CondaStep),
    /// Copy from the build context.
    Copy {
        src: String,
        dest: Option<String>,
        owner: Option<String>,
        mode: Option<u32>,
        exclude: Vec<String>,
    },
    /// Copy the venv built by the service's builder stage.
    CopyVenv {
        path: String,
        owner: Option<String>,
    },
}

impl StepKind {
    /// The readable part of a vertex name: `pip install -r libs/requirements-ml.txt`.
    pub fn describe(&self) -> String {
        match self {
            StepKind::Apt { packages } => format!("apt-get install {}", packages.join(" ")),
            StepKind::CreateUser(u) => format!("useradd {}", u.name),
            StepKind::Mkdir { path, .. } => format!("workdir {path}"),
            StepKind::Run { command, .. } => format!("run {}", one_line(command)),
            StepKind::Pip(p) => p.describe(),
            StepKind::Conda(c) => format!("{} install -f {}", c.installer, c.file),
            StepKind::Copy { src, .. } => format!("copy {src}"),
            StepKind::CopyVenv { path, .. } => format!("copy venv {path}"),
        }
    }
}

fn one_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 80 {
        format!("{}…", flat.chars().take(79).collect::<String>())
    } else {
        flat
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CondaStep {
    /// The environment file's context path.
    pub file: String,
    pub channels: Vec<String>,
    /// `micromamba`, `mamba` or `conda`.
    pub installer: String,
    /// The package cache directory (a cache mount).
    pub cache: String,
    pub env: String,
}

/// A BuildKit secret given to install steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretPlan {
    pub id: String,
    /// Exposed as this env var.
    pub env: Option<String>,
    /// Mounted as a file here.
    pub target: Option<String>,
    pub required: bool,
}

/// What installs Python requirements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Installer {
    #[default]
    Pip,
    /// uv from PyPI (optionally pinned), run from a tool state mounted into the step, so uv
    /// itself never lands in the image.
    Uv { version: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipStep {
    /// Context paths of requirements files.
    pub requirements: Vec<String>,
    /// Inline requirement specifiers.
    pub specs: Vec<String>,
    /// Context paths of local packages (`pip = ["./libs/common"]`): directories pip builds
    /// and installs.
    pub local: Vec<String>,
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    /// The interpreter that runs pip (`python3`, or the venv's python).
    pub python: String,
    pub installer: Installer,
}

impl PipStep {
    pub fn describe(&self) -> String {
        let mut parts = vec![match self.installer {
            Installer::Pip => "pip install".to_string(),
            Installer::Uv { .. } => "uv pip install".to_string(),
        }];
        for r in &self.requirements {
            parts.push(format!("-r {r}"));
        }
        parts.extend(self.specs.iter().cloned());
        parts.extend(self.local.iter().map(|p| format!("./{p}")));
        one_line(&parts.join(" "))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPlan {
    pub name: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub home: Option<String>,
    pub shell: Option<String>,
}

/// The builder half of a two-stage service.
#[derive(Clone, Debug)]
pub struct VenvPlan {
    pub builder: Base,
    /// The interpreter that creates the venv.
    pub python: String,
    pub apt: Vec<String>,
    pub path: String,
    pub pip: PipStep,
    pub span: Span,
    pub pip_span: Span,
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
const CLIENT_ARGS: &[&str] = &[
    "LAYERSTACK_MERGE",
    "LAYERSTACK_CROSS",
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
    let mut vars = BTreeMap::new();
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
                    interpolate(&d.value, &vars, Unknown::Empty).unwrap_or_else(|_| d.value.clone())
                })
                .unwrap_or_default(),
        };
        vars.insert(a.name.value.clone(), v);
    }
    vars
}

/// Checks that do not depend on a target: the `from` graph, the default target, platforms.
pub fn check_stack(stack: &Stack) -> Diagnostics {
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

/// Plan one target. Errors are returned all together.
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

struct Planner<'a> {
    stack: &'a Stack,
    vars: &'a BTreeMap<String, String>,
    diags: &'a mut Diagnostics,
    images: Vec<PlanImage>,
    index: BTreeMap<String, usize>,
    python: String,
    stack_install_env: Vec<(String, String)>,
    in_progress: BTreeSet<String>,
    platform: Platform,
    variant: Option<&'a VariantDef>,
}

impl<'a> Planner<'a> {
    fn text_with(&mut self, s: &Sp<String>, key: &str, mode: Unknown) -> String {
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

    fn text(&mut self, s: &Sp<String>, key: &str) -> String {
        self.text_with(s, key, Unknown::Error)
    }

    fn texts(&mut self, list: &[Sp<String>], key: &str) -> Vec<String> {
        list.iter().map(|s| self.text(s, key)).collect()
    }

    fn env_list(&mut self, list: &[EnvVar], key: &str, mode: Unknown) -> Vec<(String, String)> {
        list.iter()
            .map(|e| {
                (
                    e.name.value.clone(),
                    self.text_with(&e.value, &format!("{key}.{}", e.name.value), mode),
                )
            })
            .collect()
    }

    fn context_path(&mut self, s: &Sp<String>, key: &str) -> String {
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

    fn base(&mut self, from: &Sp<String>, key: &str) -> Option<Base> {
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
    fn add(&mut self, img: &'a ImageDef) -> Option<usize> {
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

    fn add_new(&mut self, img: &'a ImageDef) -> Option<usize> {
        let key = img.key();
        let from = img.from.as_ref()?;
        let base = self.base(from, &format!("{key}.from"));
        let mut steps = vec![];
        let step = |kind: StepKind, span: Span| Step { kind, span };

        // 1. System packages.
        let apt = self.packages(&img.apt, &format!("{key}.apt"));
        if !apt.is_empty() {
            steps.push(step(
                StepKind::Apt { packages: apt },
                img.apt
                    .iter()
                    .map(|s| s.span)
                    .reduce(Span::join)
                    .unwrap_or(img.span),
            ));
        }
        // 2. The user.
        let user = img
            .user
            .as_ref()
            .map(|u| (self.user(u, &format!("{key}.user")), u));
        if let Some((Some(up), u)) = &user {
            let create = u.create.as_ref().map(|c| c.value).unwrap_or(true);
            if create && up.name != "root" && !up.name.chars().all(|c| c.is_ascii_digit()) {
                steps.push(step(StepKind::CreateUser(up.clone()), u.span));
            }
        }
        let user_name = user
            .as_ref()
            .and_then(|(u, _)| u.as_ref().map(|u| u.name.clone()));
        // The effective declared user: own, or inherited from a layer of this stack.
        let effective_user = user_name.clone().or_else(|| match &base {
            Some(Base::Layer { index, .. }) => self.images[*index].declared_user.clone(),
            _ => None,
        });
        let owner = effective_user.clone().filter(|u| u != "root" && u != "0");
        // 3. The workdir.
        let workdir = img.workdir.as_ref().map(|w| {
            let v = self.text(w, &format!("{key}.workdir"));
            if !v.starts_with('/') {
                self.diags.push(
                    Diagnostic::error(format!("workdir `{v}` must be an absolute path"))
                        .at(w.span)
                        .key(format!("{key}.workdir")),
                );
            }
            (v, w.span)
        });
        if let Some((path, span)) = &workdir {
            steps.push(step(
                StepKind::Mkdir {
                    path: path.clone(),
                    owner: owner.clone(),
                },
                *span,
            ));
        }
        // 4. Commands.
        for (i, r) in img.run.iter().enumerate() {
            let rk = format!("{key}.run[{i}]");
            let command = self.text_with(&r.cmd, &rk, Unknown::Shell);
            let context = r
                .context
                .iter()
                .enumerate()
                .map(|(j, p)| self.context_path(p, &format!("{rk}.context[{j}]")))
                .collect();
            steps.push(step(StepKind::Run { command, context }, r.span));
        }
        // 5. A conda environment, then Python deps (pip installs into it).
        if let Some(c) = &img.conda {
            let ck = format!("{key}.conda");
            let file = self.context_path(&c.file, &format!("{ck}.file"));
            let channels = self.texts(&c.channels, &format!("{ck}.channels"));
            let installer = c
                .installer
                .as_ref()
                .map(|i| self.text(i, &format!("{ck}.installer")))
                .unwrap_or_else(|| "micromamba".into());
            if !matches!(installer.as_str(), "micromamba" | "mamba" | "conda") {
                self.diags.push(
                    Diagnostic::error(format!("unknown conda installer `{installer}`"))
                        .at(c.installer.as_ref().map(|i| i.span).unwrap_or(c.span))
                        .key(format!("{ck}.installer"))
                        .hint("use \"micromamba\", \"mamba\" or \"conda\""),
                );
            }
            let cache = c
                .cache
                .as_ref()
                .map(|p| self.abs_path(p, &format!("{ck}.cache")))
                .unwrap_or_else(|| "/opt/conda/pkgs".into());
            let env = c
                .env
                .as_ref()
                .map(|e| self.text(e, &format!("{ck}.env")))
                .unwrap_or_else(|| "base".into());
            steps.push(step(
                StepKind::Conda(CondaStep {
                    file,
                    channels,
                    installer,
                    cache,
                    env,
                }),
                c.span,
            ));
        }
        let requirements: Vec<String> = img
            .requirements
            .iter()
            .enumerate()
            .map(|(i, r)| self.context_path(r, &format!("{key}.requirements[{i}]")))
            .collect();
        // `./path` entries are local packages: context directories pip builds and installs.
        let mut specs = vec![];
        let mut local = vec![];
        for (i, entry) in img.pip.iter().enumerate() {
            let k = format!("{key}.pip[{i}]");
            let text = self.text(entry, &k);
            if text == "." || text.starts_with("./") || text.starts_with("../") {
                local.push(self.context_path(entry, &k));
            } else if let Some(path) = text
                .strip_prefix("-e ")
                .or_else(|| text.strip_prefix("--editable "))
                .filter(|p| p.trim_start().starts_with('.'))
            {
                self.diags.push(
                    Diagnostic::error(format!(
                        "`{text}`: an editable install would point at a source that is not in the image"
                    ))
                    .at(entry.span)
                    .key(k)
                    .hint(format!(
                        "install it as a package (`\"{}\"`), or copy it and set PYTHONPATH",
                        path.trim()
                    )),
                );
            } else {
                specs.push(text);
            }
        }
        let index_url = img
            .index_url
            .as_ref()
            .map(|u| self.text(u, &format!("{key}.index-url")));
        let extra_index_urls =
            self.texts(&img.extra_index_urls, &format!("{key}.extra-index-urls"));
        let installer = self.installer(img, &key);
        let torch_step = match &img.torch {
            Some(usage) => {
                self.torch_step(usage, &key, index_url.clone(), extra_index_urls.clone())
            }
            None => None,
        };
        if img.torch.is_some() && img.venv.is_some() {
            self.diags.push(
                Diagnostic::error("`torch` is not supported in a two-stage `venv` service")
                    .at(img.torch.as_ref().map(|t| t.span).unwrap_or(img.span))
                    .key(format!("{key}.torch"))
                    .hint("install torch in a layer and build the service on it"),
            );
        }
        if let (Some(mut t), Some(usage)) = (torch_step, &img.torch) {
            t.installer = installer.clone();
            steps.push(step(StepKind::Pip(t), usage.span));
        }
        let has_pip = !requirements.is_empty() || !specs.is_empty() || !local.is_empty();
        let pip_span = img
            .requirements
            .iter()
            .chain(img.pip.iter())
            .map(|s| s.span)
            .reduce(Span::join)
            .unwrap_or(img.span);
        let mut venv = None;
        if let Some(vd) = &img.venv {
            let path = vd
                .path
                .as_ref()
                .map(|p| self.text(p, &format!("{key}.venv.path")))
                .unwrap_or_else(|| "/opt/venv".into());
            if !path.starts_with('/') {
                self.diags.push(
                    Diagnostic::error(format!("venv path `{path}` must be absolute"))
                        .at(vd.span)
                        .key(format!("{key}.venv.path")),
                );
            }
            let builder = match &vd.builder {
                Some(b) => self.base(b, &format!("{key}.venv.builder")),
                None => base.clone(),
            };
            let bapt = self.packages(&vd.builder_apt, &format!("{key}.venv.builder-apt"));
            if let Some(builder) = builder {
                let pip = PipStep {
                    requirements: requirements.clone(),
                    specs: specs.clone(),
                    local: local.clone(),
                    index_url: index_url.clone(),
                    extra_index_urls: extra_index_urls.clone(),
                    python: format!("{path}/bin/python"),
                    installer: installer.clone(),
                };
                venv = Some(VenvPlan {
                    builder,
                    python: self.python.clone(),
                    apt: bapt,
                    path: path.clone(),
                    pip,
                    span: vd.span,
                    pip_span,
                });
            }
            steps.push(step(StepKind::CopyVenv { path, owner: None }, vd.span));
        } else if has_pip {
            steps.push(step(
                StepKind::Pip(PipStep {
                    requirements,
                    specs,
                    local,
                    index_url,
                    extra_index_urls,
                    python: self.python.clone(),
                    installer,
                }),
                pip_span,
            ));
        }
        // 6. Files.
        for (i, c) in img.copy.iter().enumerate() {
            let ck = format!("{key}.copy[{i}]");
            let src = self.context_path(&c.src, &format!("{ck}.src"));
            let dest = c.dest.as_ref().map(|d| self.text(d, &format!("{ck}.dest")));
            let owner = match &c.chown {
                Chown::Default => owner.clone(),
                Chown::No => None,
                Chown::To(s) => {
                    let v = self.text(s, &format!("{ck}.chown"));
                    let ok_part = |p: &str| {
                        !p.is_empty()
                            && (p.chars().all(|c| c.is_ascii_digit())
                                || (p.len() <= 32
                                    && p.chars().all(|c| {
                                        c.is_ascii_lowercase()
                                            || c.is_ascii_digit()
                                            || c == '_'
                                            || c == '-'
                                    })))
                    };
                    let valid = match v.split_once(':') {
                        Some((u, g)) => ok_part(u) && ok_part(g),
                        None => ok_part(&v),
                    };
                    if !valid {
                        self.diags.push(
                            Diagnostic::error(format!("invalid owner `{v}`"))
                                .at(s.span)
                                .key(format!("{ck}.chown"))
                                .hint("use \"user\", \"user:group\" or numeric ids like \"1000:1000\""),
                        );
                    }
                    Some(v)
                }
            };
            let mode = c.mode.as_ref().and_then(|m| {
                match u32::from_str_radix(m.value.trim_start_matches("0o"), 8) {
                    Ok(v) if v <= 0o7777 => Some(v),
                    _ => {
                        self.diags.push(
                            Diagnostic::error(format!("invalid mode `{}`", m.value))
                                .at(m.span)
                                .key(format!("{ck}.mode"))
                                .hint("an octal mode like \"0755\""),
                        );
                        None
                    }
                }
            });
            let exclude = self.texts(&c.exclude, &format!("{ck}.exclude"));
            steps.push(step(
                StepKind::Copy {
                    src,
                    dest,
                    owner,
                    mode,
                    exclude,
                },
                c.span,
            ));
        }

        let config = self.config(img, &key, user_name, workdir.map(|w| w.0));
        let mut install_env = self.stack_install_env.clone();
        install_env.extend(self.env_list(
            &img.install_env,
            &format!("{key}.install-env"),
            Unknown::Error,
        ));
        let base = base?;
        let idx = self.images.len();
        self.images.push(PlanImage {
            name: img.name.value.clone(),
            kind: img.kind,
            key,
            span: img.span,
            description: img.description.as_ref().map(|d| d.value.clone()),
            base,
            steps,
            config,
            venv,
            install_env,
            declared_user: effective_user,
            cross_install: img
                .cross_install
                .as_ref()
                .or(self.stack.cross_install.as_ref())
                .is_none_or(|c| c.value),
        });
        self.index.insert(img.name.value.clone(), idx);
        Some(idx)
    }

    /// The stack's secrets, validated.
    fn secrets(&mut self) -> Vec<SecretPlan> {
        let mut out = vec![];
        for d in &self.stack.secrets {
            let key = format!("secrets.{}", d.name.value);
            let env = d.env.as_ref().map(|e| {
                if !crate::stack::valid_arg_name(&e.value) {
                    self.diags.push(
                        Diagnostic::error(format!("invalid env var name `{}`", e.value))
                            .at(e.span)
                            .key(format!("{key}.env")),
                    );
                }
                e.value.clone()
            });
            let target = match (&d.target, &env) {
                (Some(t), _) => Some(self.abs_path(t, &format!("{key}.target"))),
                (None, None) => Some(format!("/run/secrets/{}", d.name.value)),
                (None, Some(_)) => None,
            };
            out.push(SecretPlan {
                id: d.name.value.clone(),
                env,
                target,
                required: d.required.as_ref().is_none_or(|r| r.value),
            });
        }
        out
    }

    /// The image's installer: its own `installer`, else the stack's, else pip.
    fn installer(&mut self, img: &ImageDef, key: &str) -> Installer {
        let (value, k) = match (&img.installer, &self.stack.installer) {
            (Some(v), _) => (v, format!("{key}.installer")),
            (None, Some(v)) => (v, "stack.installer".to_string()),
            (None, None) => return Installer::Pip,
        };
        let text = self.text(value, &k);
        match text.as_str() {
            "pip" => Installer::Pip,
            "uv" => Installer::Uv { version: None },
            other => match other.strip_prefix("uv==") {
                Some(v)
                    if !v.is_empty()
                        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') =>
                {
                    Installer::Uv {
                        version: Some(v.to_string()),
                    }
                }
                _ => {
                    self.diags.push(
                        Diagnostic::error(format!("unknown installer `{other}`"))
                            .at(value.span)
                            .key(k)
                            .hint("use \"pip\", \"uv\" or a pinned \"uv==0.5.11\""),
                    );
                    Installer::Pip
                }
            },
        }
    }

    /// The pip step installing an image's `[torch]` packages: the build for this platform and
    /// the variant's backend, from the backend's index.
    fn torch_step(
        &mut self,
        usage: &Sp<TorchUse>,
        key: &str,
        index_url: Option<String>,
        extra: Vec<String>,
    ) -> Option<PipStep> {
        let Some(t) = self.stack.torch.as_ref() else {
            self.diags.push(
                Diagnostic::error("`torch` is used but the stack has no [torch] table")
                    .at(usage.span)
                    .key(format!("{key}.torch"))
                    .hint("add [torch] packages = { torch = \"2.1.2\" }"),
            );
            return None;
        };
        let (backend, backend_span, backend_key) =
            match self.variant.and_then(|v| v.torch.as_ref().map(|b| (v, b))) {
                Some((v, b)) => (
                    b.value.clone(),
                    b.span,
                    format!("variants.{}.torch", v.name.value),
                ),
                None => ("cpu".to_string(), usage.span, format!("{key}.torch")),
            };
        let backend = if backend == "cuda" {
            t.cuda
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_else(|| "cu118".into())
        } else {
            backend
        };
        let valid_backend = backend == "cpu"
            || backend
                .strip_prefix("cu")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            || backend.strip_prefix("rocm").is_some_and(|n| {
                !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.')
            });
        if !valid_backend {
            self.diags.push(
                Diagnostic::error(format!("unknown torch backend `{backend}`"))
                    .at(backend_span)
                    .key(backend_key)
                    .hint("use \"cpu\", \"cuda\" (the [torch] cuda flavour) or a flavour like \"cu118\", \"cu121\", \"rocm5.6\""),
            );
            return None;
        }
        let arch = self.platform.architecture.clone();
        let platform = self.platform.clone();
        let names: Vec<&(Sp<String>, Sp<String>)> = match &usage.value {
            TorchUse::All => t.packages.iter().collect(),
            TorchUse::Only(list) => {
                let mut out = vec![];
                for n in list {
                    match t.packages.iter().find(|(p, _)| p.value == *n) {
                        Some(p) => out.push(p),
                        None => self.diags.push(
                            Diagnostic::error(format!("`{n}` is not a package of [torch]"))
                                .at(usage.span)
                                .key(format!("{key}.torch"))
                                .hint(format!(
                                    "[torch] packages: {}",
                                    t.packages
                                        .iter()
                                        .map(|(p, _)| p.value.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )),
                        ),
                    }
                }
                out
            }
        };
        let local = match (arch.as_str(), backend.as_str()) {
            ("amd64", b) => Some(b.to_string()),
            ("arm64", "cpu") => None,
            ("arm64", b) => {
                self.diags.push(
                    Diagnostic::error(format!("PyTorch has no `{b}` builds for {platform}"))
                        .at(backend_span)
                        .key(backend_key)
                        .hint("GPU builds exist for linux/amd64 only: build this variant for linux/amd64, or use torch = \"cpu\" on arm64"),
                );
                return None;
            }
            _ => {
                self.diags.push(
                    Diagnostic::error(format!("PyTorch publishes no wheels for {platform}"))
                        .at(usage.span)
                        .key(format!("{key}.torch"))
                        .hint("torch images can be built for linux/amd64 and linux/arm64"),
                );
                return None;
            }
        };
        let mut specs = vec![];
        for (name, version) in names {
            let v = self.text(version, &format!("torch.packages.{}", name.value));
            if let Some((_, l)) = v.split_once('+') {
                let msg = if l == "cpu" && arch == "arm64" {
                    format!("`{}` has no `+cpu` build for {platform}", name.value)
                } else {
                    format!(
                        "write the version of `{}` without a local part (`+{l}`)",
                        name.value
                    )
                };
                self.diags.push(
                    Diagnostic::error(msg)
                        .at(version.span)
                        .key(format!("torch.packages.{}", name.value))
                        .hint("layerstack adds +cpu/+cuXXX per platform and variant"),
                );
                continue;
            }
            specs.push(match &local {
                Some(l) => format!("{}=={v}+{l}", name.value),
                None => format!("{}=={v}", name.value),
            });
        }
        // Index URLs may use args (`cpu = "${TORCH_CPU_INDEX}"`), like every other string.
        let cpu_index = match &t.index_cpu {
            Some(u) => self.text(u, "torch.index.cpu"),
            None => "https://download.pytorch.org/whl/cpu".to_string(),
        };
        let cuda_index = match &t.index_cuda {
            Some(u) => self.text(u, "torch.index.cuda"),
            None => "https://download.pytorch.org/whl/{cuda}".to_string(),
        };
        let default_index = t
            .index_default
            .as_ref()
            .map(|u| self.text(u, "torch.index.default"));
        let (index_url, mut extra_index_urls) = match &local {
            Some(l) if l == "cpu" => (index_url, vec![cpu_index]),
            Some(l) => (
                index_url,
                vec![cuda_index.replace("{cuda}", l).replace("{backend}", l)],
            ),
            None => (default_index.or(index_url), vec![]),
        };
        extra_index_urls.extend(extra);
        Some(PipStep {
            requirements: vec![],
            specs,
            local: vec![],
            index_url,
            extra_index_urls,
            python: self.python.clone(),
            installer: Installer::Pip,
        })
    }

    fn packages(&mut self, list: &[Sp<String>], key: &str) -> Vec<String> {
        let mut out = vec![];
        for p in list {
            let before = self.diags.error_count();
            let v = self.text(p, key);
            if self.diags.error_count() > before {
                continue; // an undefined ${ARG}: one error is enough
            }
            for word in v.split_whitespace() {
                if word.starts_with('-')
                    || !word
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.:=_~*".contains(c))
                {
                    self.diags.push(
                        Diagnostic::error(format!("`{word}` is not an apt package name"))
                            .at(p.span)
                            .key(key.to_string())
                            .hint("list package names like \"curl\" or \"libpq-dev=15.*\"; use `run` for other apt-get options"),
                    );
                } else {
                    out.push(word.to_string());
                }
            }
        }
        out
    }

    fn user(&mut self, u: &crate::stack::UserDef, key: &str) -> Option<UserPlan> {
        let name = self.text(&u.name, &format!("{key}.name"));
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid {
            self.diags.push(
                Diagnostic::error(format!("invalid user name `{name}`"))
                    .at(u.name.span)
                    .key(key.to_string())
                    .hint("lowercase letters, digits, `_` and `-`, at most 32 characters"),
            );
            return None;
        }
        Some(UserPlan {
            name,
            uid: u.uid.as_ref().map(|v| v.value),
            gid: u.gid.as_ref().map(|v| v.value),
            home: u
                .home
                .as_ref()
                .map(|h| self.abs_path(h, &format!("{key}.home"))),
            shell: u
                .shell
                .as_ref()
                .map(|h| self.abs_path(h, &format!("{key}.shell"))),
        })
    }

    /// An absolute path made of safe characters (it ends up in a shell command).
    fn abs_path(&mut self, s: &Sp<String>, key: &str) -> String {
        let v = self.text(s, key);
        let safe = v.starts_with('/')
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
        if !safe {
            self.diags.push(
                Diagnostic::error(format!("`{v}` is not an absolute path"))
                    .at(s.span)
                    .key(key.to_string())
                    .hint("use a path like /home/appuser or /bin/bash (letters, digits, `/._-+`)"),
            );
        }
        v
    }

    fn command(&mut self, c: &Sp<Command>, key: &str, shell_prefix: &[&str]) -> Vec<String> {
        match &c.value {
            Command::Exec(items) => items
                .iter()
                .map(|i| self.text_with(&Sp::new(i.clone(), c.span), key, Unknown::Shell))
                .collect(),
            Command::Shell(s) => {
                let mut v: Vec<String> = shell_prefix.iter().map(|s| s.to_string()).collect();
                v.push(self.text_with(&Sp::new(s.clone(), c.span), key, Unknown::Shell));
                v
            }
        }
    }

    fn duration(&mut self, s: &Option<Sp<String>>, key: &str) -> Option<u64> {
        let s = s.as_ref()?;
        match parse_duration(&s.value) {
            Ok(ns) => Some(ns),
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(e)
                        .at(s.span)
                        .key(key.to_string())
                        .hint("durations look like \"30s\", \"1m30s\" or \"500ms\""),
                );
                None
            }
        }
    }

    fn config(
        &mut self,
        img: &ImageDef,
        key: &str,
        user: Option<String>,
        workdir: Option<String>,
    ) -> ConfigChanges {
        let env = self.env_list(&img.env, &format!("{key}.env"), Unknown::Keep);
        let labels = self.env_list(&img.labels, &format!("{key}.labels"), Unknown::Error);
        let mut ports = vec![];
        for p in &img.expose {
            let v = self.text(p, &format!("{key}.expose"));
            match normalize_port(&v) {
                Ok(n) => ports.push(n),
                Err(e) => self.diags.push(
                    Diagnostic::error(e)
                        .at(p.span)
                        .key(format!("{key}.expose"))
                        .hint("ports look like 8000 or \"53/udp\""),
                ),
            }
        }
        let healthcheck = img.healthcheck.as_ref().map(|h| {
            let hk = format!("{key}.healthcheck");
            let test = h.test.as_ref()?;
            let test = match &test.value {
                Command::Exec(_) => {
                    let mut v = vec!["CMD".to_string()];
                    v.extend(self.command(test, &hk, &[]));
                    v
                }
                Command::Shell(_) => {
                    let mut v = vec!["CMD-SHELL".to_string()];
                    v.extend(self.command(test, &hk, &[]));
                    v
                }
            };
            Some(Healthcheck {
                test,
                interval_ns: self.duration(&h.interval, &format!("{hk}.interval")),
                timeout_ns: self.duration(&h.timeout, &format!("{hk}.timeout")),
                start_period_ns: self.duration(&h.start_period, &format!("{hk}.start-period")),
                retries: h.retries.as_ref().map(|r| r.value),
            })
        });
        ConfigChanges {
            env,
            workdir,
            user,
            cmd: img
                .cmd
                .as_ref()
                .map(|c| self.command(c, &format!("{key}.cmd"), &["/bin/sh", "-c"])),
            entrypoint: img
                .entrypoint
                .as_ref()
                .map(|c| self.command(c, &format!("{key}.entrypoint"), &["/bin/sh", "-c"])),
            exposed_ports: ports,
            healthcheck,
            labels,
            stop_signal: img
                .stop_signal
                .as_ref()
                .map(|s| self.text(s, &format!("{key}.stop-signal"))),
        }
    }
}

/// Patterns of a `.dockerignore` file, as BuildKit's `local.excludepatterns` expects them:
/// comments and blank lines dropped, paths cleaned, a leading `/` removed, `!` kept.
pub fn dockerignore_patterns(text: &str) -> Vec<String> {
    let mut out = vec![];
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (neg, pat) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let cleaned = clean_path(pat);
        if cleaned.is_empty() {
            continue;
        }
        out.push(if neg { format!("!{cleaned}") } else { cleaned });
    }
    out
}

/// Lexical path cleaning (like Go's `path.Clean`), relative, without a leading `/`.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// `python:3.12-slim` → `docker.io/library/python:3.12-slim` (tag `latest` when none).
pub fn normalize_image_ref(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("empty reference".into());
    }
    let r = oci_spec::distribution::Reference::try_from(s).map_err(|e| e.to_string())?;
    let mut out = format!("{}/{}", r.registry(), r.repository());
    match (r.tag(), r.digest()) {
        (Some(t), Some(d)) => out.push_str(&format!(":{t}@{d}")),
        (Some(t), None) => out.push_str(&format!(":{t}")),
        (None, Some(d)) => out.push_str(&format!("@{d}")),
        (None, None) => out.push_str(":latest"),
    }
    Ok(out)
}

fn normalize_port(s: &str) -> Result<String, String> {
    let (num, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let n: u16 = num.parse().map_err(|_| format!("invalid port `{s}`"))?;
    if n == 0 {
        return Err(format!("invalid port `{s}`"));
    }
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(format!("invalid protocol `{proto}` in port `{s}`"));
    }
    Ok(format!("{n}/{proto}"))
}

/// Go-style durations: `30s`, `1m30s`, `500ms`, `2h`. Returns nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let err = || format!("invalid duration `{s}`");
    if s.is_empty() {
        return Err(err());
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;
    use crate::stack::parse;

    fn plan_str(s: &str, target: Option<&str>) -> Result<Plan, Diagnostics> {
        let (stack, d) = parse(&SourceFile::new("stack.toml", s));
        assert!(!d.has_errors(), "{d:?}");
        plan(
            &stack,
            &BuildOptions {
                target: target.map(str::to_string),
                ..BuildOptions::default()
            },
        )
    }

    #[test]
    fn orders_images_and_steps() {
        let p = plan_str(
            r#"
[args]
PY = "3.12"
[layers.base]
from = "python:${PY}-slim"
apt = ["curl git"]
user = "appuser"
workdir = "/app"
[layers.ml]
from = "base"
requirements = ["libs/req.txt"]
pip = ["numpy"]
[services.api]
from = "ml"
copy = ["apps/api"]
cmd = "python -m api"
"#,
            Some("api"),
        )
        .unwrap();
        let names: Vec<&str> = p.images.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["base", "ml", "api"]);
        assert_eq!(
            p.images[0].base,
            Base::Image {
                reference: "docker.io/library/python:3.12-slim".into(),
                span: p.images[0].base_span()
            }
        );
        let kinds: Vec<String> = p.images[0]
            .steps
            .iter()
            .map(|s| s.kind.describe())
            .collect();
        assert_eq!(
            kinds,
            [
                "apt-get install curl git",
                "useradd appuser",
                "workdir /app"
            ]
        );
        assert_eq!(
            p.images[1].steps[0].kind.describe(),
            "pip install -r libs/req.txt numpy"
        );
        // The api copy is owned by the inherited user.
        assert!(
            matches!(&p.images[2].steps[0].kind, StepKind::Copy { owner: Some(o), .. } if o == "appuser")
        );
        assert_eq!(
            p.images[2].config.cmd.as_deref().unwrap(),
            ["/bin/sh", "-c", "python -m api"]
        );
    }

    #[test]
    fn reports_cycles_and_unknown_targets() {
        let (stack, _) = parse(&SourceFile::new(
            "s",
            "[layers.a]\nfrom = \"b\"\n[layers.b]\nfrom = \"a\"\n",
        ));
        let d = check_stack(&stack);
        assert_eq!(d.error_count(), 1);
        assert!(d.items[0].message.contains("cycle"), "{:?}", d.items);
        let e = plan_str("[services.api]\nfrom = \"python:3\"\n", Some("apii")).unwrap_err();
        assert!(
            e.items[0]
                .hint
                .as_deref()
                .unwrap()
                .contains("did you mean `api`?"),
            "{:?}",
            e.items
        );
    }

    #[test]
    fn undefined_args_point_into_the_string() {
        let src = "[services.api]\nfrom = \"python:${PYY}\"\n";
        let e = plan_str(src, None).unwrap_err();
        let d = &e.items[0];
        assert_eq!(d.message, "`${PYY}` is not defined");
        assert_eq!(&src[d.span.unwrap().start..d.span.unwrap().end], "${PYY}");
    }

    #[test]
    fn interpolated_from_is_checked_like_a_literal_one() {
        // A service named through an arg: an error, not a panic.
        let e = plan_str("[args]\nB = \"api\"\n[services.api]\nfrom = \"python:3\"\n[services.x]\nfrom = \"${B}\"\n", Some("x")).unwrap_err();
        assert!(
            e.items.iter().any(|d| d.message.contains("is a service")),
            "{:?}",
            e.items
        );
        // A cycle that only appears after interpolation: an error, not a stack overflow.
        let e = plan_str(
            "[args]\nSELF = \"a\"\n[layers.a]\nfrom = \"${SELF}\"\n",
            Some("a"),
        )
        .unwrap_err();
        assert!(
            e.items.iter().any(|d| d.message.contains("cycle")),
            "{:?}",
            e.items
        );
        // A venv builder that is a service is reported, not dropped.
        let e = plan_str("[services.b]\nfrom = \"python:3\"\n[services.s]\nfrom = \"python:3\"\npip = [\"six\"]\nvenv = { builder = \"b\" }\n", Some("s")).unwrap_err();
        assert!(
            e.items
                .iter()
                .any(|d| d.key.as_deref() == Some("services.s.venv.builder")),
            "{:?}",
            e.items
        );
    }

    #[test]
    fn arg_defaults_use_earlier_args() {
        let p = plan_str("[args]\nA = \"x\"\nB = \"${A}-y\"\n[services.s]\nfrom = \"img:${B}\"\ncopy = [\"conf/\"]\n", None).unwrap();
        assert!(
            matches!(&p.images[0].base, Base::Image { reference, .. } if reference == "docker.io/library/img:x-y")
        );
        assert!(matches!(&p.images[0].steps[0].kind, StepKind::Copy { src, .. } if src == "conf"));
    }

    const TORCH: &str = r#"
[torch]
packages = { torch = "2.1.2", torchvision = "0.16.2" }
[torch.index]
cpu = "http://idx/cpu/simple"
cuda = "http://idx/{cuda}/simple"
default = "http://idx/simple"
[variants.cpu]
platforms = ["linux/amd64", "linux/arm64"]
torch = "cpu"
[variants.gpu]
platforms = ["linux/amd64"]
torch = "cuda"
env = { NVIDIA_VISIBLE_DEVICES = "all" }
[variants.gpu.layers.ml]
apt = ["libgomp1"]
[layers.ml]
from = "python:3.11-slim"
torch = true
[services.app]
from = "ml"
"#;

    fn torch_plan(target: &str, platform: &str) -> Result<Plan, Diagnostics> {
        let (stack, d) = parse(&SourceFile::new("stack.toml", TORCH));
        assert!(!d.has_errors(), "{d:?}");
        plan(
            &stack,
            &BuildOptions {
                target: Some(target.into()),
                platform: Platform::parse(platform).unwrap(),
                ..BuildOptions::default()
            },
        )
    }

    fn torch_pip(p: &Plan) -> PipStep {
        p.images[0]
            .steps
            .iter()
            .find_map(|s| match &s.kind {
                StepKind::Pip(p) => Some(p.clone()),
                _ => None,
            })
            .expect("a torch step")
    }

    #[test]
    fn torch_builds_follow_platform_and_variant() {
        let amd = torch_pip(&torch_plan("app", "linux/amd64").unwrap());
        assert_eq!(amd.specs, ["torch==2.1.2+cpu", "torchvision==0.16.2+cpu"]);
        assert_eq!(amd.extra_index_urls, ["http://idx/cpu/simple"]);
        let arm = torch_pip(&torch_plan("app@cpu", "linux/arm64").unwrap());
        assert_eq!(arm.specs, ["torch==2.1.2", "torchvision==0.16.2"]);
        assert_eq!(arm.index_url.as_deref(), Some("http://idx/simple"));
        assert!(arm.extra_index_urls.is_empty());
        let gpu_plan = torch_plan("app@gpu", "linux/amd64").unwrap();
        assert_eq!(gpu_plan.variant.as_deref(), Some("gpu"));
        let gpu = torch_pip(&gpu_plan);
        assert_eq!(
            gpu.specs,
            ["torch==2.1.2+cu118", "torchvision==0.16.2+cu118"]
        );
        assert_eq!(gpu.extra_index_urls, ["http://idx/cu118/simple"]);
        // The overlay added apt to the layer and the variant's env reached the images.
        assert!(
            matches!(&gpu_plan.images[0].steps[0].kind, StepKind::Apt { packages } if packages == &["libgomp1".to_string()])
        );
        assert!(
            gpu_plan.images[1]
                .config
                .env
                .iter()
                .any(|(k, _)| k == "NVIDIA_VISIBLE_DEVICES")
        );
    }

    #[test]
    fn impossible_torch_combinations_are_errors() {
        let e = torch_plan("app@gpu", "linux/arm64").unwrap_err();
        assert!(
            e.items[0]
                .message
                .contains("variant `gpu` is not built for linux/arm64"),
            "{:?}",
            e.items
        );
        // A CUDA variant that claims arm64 is caught by `check` at the variant's torch line.
        let src = TORCH.replace(
            "platforms = [\"linux/amd64\"]\ntorch = \"cuda\"",
            "platforms = [\"linux/amd64\", \"linux/arm64\"]\ntorch = \"cuda\"",
        );
        let d = crate::check(
            &SourceFile::new("stack.toml", src.clone()),
            &BuildOptions::default(),
        );
        let err = d
            .errors()
            .find(|d| d.message.contains("no `cu118` builds for linux/arm64"))
            .unwrap_or_else(|| panic!("{:?}", d.items));
        assert_eq!(err.key.as_deref(), Some("variants.gpu.torch"));
        let line = &src[err.span.unwrap().start..err.span.unwrap().end];
        assert_eq!(line, "\"cuda\"");
        // A pinned +cpu build on arm64.
        let src = TORCH.replace("torch = \"2.1.2\"", "torch = \"2.1.2+cpu\"");
        let d = crate::check(
            &SourceFile::new("stack.toml", src),
            &BuildOptions::default(),
        );
        assert!(
            d.errors()
                .any(|d| d.message.contains("has no `+cpu` build for linux/arm64")),
            "{:?}",
            d.items
        );
        // An unknown variant lists the others.
        let e = torch_plan("app@cuda", "linux/amd64").unwrap_err();
        assert!(
            e.items.iter().any(|d| d
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("variants: cpu, gpu"))),
            "{:?}",
            e.items
        );
    }

    #[test]
    fn dockerignore() {
        let p = dockerignore_patterns(
            "# comment\n\n/secret.txt\n*.pyc\n!keep.pyc\n ./build/ \nnode_modules/../x\n",
        );
        assert_eq!(p, ["secret.txt", "*.pyc", "!keep.pyc", "build", "x"]);
    }

    #[test]
    fn durations_and_ports() {
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(normalize_port("8000").unwrap(), "8000/tcp");
        assert!(normalize_port("70000").is_err());
        assert_eq!(
            normalize_image_ref("ghcr.io/a/b:v1").unwrap(),
            "ghcr.io/a/b:v1"
        );
        assert_eq!(
            normalize_image_ref("ubuntu").unwrap(),
            "docker.io/library/ubuntu:latest"
        );
        assert!(normalize_image_ref("Bad Ref").is_err());
    }

    impl PlanImage {
        fn base_span(&self) -> Span {
            match &self.base {
                Base::Image { span, .. } | Base::Layer { span, .. } => *span,
            }
        }
    }
}
