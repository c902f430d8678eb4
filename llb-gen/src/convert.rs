//! The converter: the one module that sees both the plan and LLB. Plan + base image configs →
//! LLB graph, image config and the source map.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Diagnostic, Diagnostics};
use crate::image::{HistoryEntry, ImageConfig};
use crate::interp::{Unknown, interpolate};
use crate::llb::{
    CacheSharing, Exec, FileAction, Graph, Mount, NetMode, Output, Owner, VertexMeta, op_digests,
};
use crate::pb;
use crate::plan::{
    Base, BuildOptions, CondaStep, Installer, Network, PipStep, Plan, PlanImage, StepKind, UserPlan,
};
use crate::platform::Platform;
use crate::source::{SourceFile, Span};

/// Where a conda environment file is mounted.
pub const CONDA_DIR: &str = "/run/layerstack/conda";

/// Where the uv tool is mounted into install steps.
pub const UV_DIR: &str = "/run/layerstack/uv";

/// Where the requirements files of a pip step are mounted.
pub const REQUIREMENTS_DIR: &str = "/run/layerstack/requirements";

/// Where a `run` step's context paths are mounted (writable, thrown away), and its working
/// directory when it has some.
pub const RUN_CONTEXT_DIR: &str = "/run/layerstack/context";

/// Where a pip step's local packages are mounted (writable, thrown away: builds write into
/// the source tree).
pub const PACKAGES_DIR: &str = "/run/layerstack/packages";

/// Where the cross-install script is mounted.
pub const CROSS_DIR: &str = "/run/layerstack/cross";

/// Where a cross-install step sees the target image (read-only), writes the files to merge
/// onto it, and (probe) writes its verdict. The script has the same paths.
pub const CROSS_TARGET: &str = "/run/layerstack/target";
pub const CROSS_OUT: &str = "/run/layerstack/out";
pub const CROSS_STATUS: &str = "/run/layerstack/status";
/// Where a cross-install sees the verdict of the probe that allowed it (read-only, unused by
/// the script): the probe is then part of the image's graph, so a `mode=max` cache export
/// holds it and a build importing that cache gets the probe from it too.
pub const CROSS_PROBE: &str = "/run/layerstack/probe";

/// Installs wheels for a foreign platform on the build platform (see `cross_install.py`).
const CROSS_SCRIPT: &str = include_str!("cross_install.py");

/// Whether a pip step for a foreign platform can install on the build platform, as a probe
/// found out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrossVerdict {
    /// Every distribution has a wheel for the target: install on the build platform.
    Cross,
    /// Install under emulation, for this reason (a source build, a conflict…).
    Emulate(String),
}

/// A question the converter could not answer alone: solve `definition` (its result holds
/// `status.json`, written by the cross-install script in probe mode) and convert again with
/// the verdict under `key`.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The digest of the probe vertex: verdicts are looked up by it.
    pub key: String,
    pub definition: pb::Definition,
    /// The progress name of the probe vertex.
    pub name: String,
}

/// Cross-installs for a plan whose platform is not the build platform.
pub struct CrossEnv<'a> {
    /// The same target planned for the build platform: install steps run on its images
    /// (None: the target cannot be planned there, so installs are emulated).
    pub twin: Option<&'a Plan>,
    /// Verdicts of probes answered so far.
    pub verdicts: &'a BTreeMap<String, CrossVerdict>,
    /// An unanswered probe is recorded in [`Converted::probes`] (the frontend answers it
    /// and converts again); without `ask` a cross-install is assumed to work (the CLI).
    pub ask: bool,
}

/// Base image configs, looked up by the edge (the frontend resolves them through the gateway
/// before converting; the CLI has none or a fixed set).
pub trait ImageResolver {
    /// The config JSON of `reference` for `platform`, or None when unknown.
    fn config(&self, reference: &str, platform: &Platform) -> Option<Vec<u8>>;

    /// The digest `reference` resolved to (BuildKit's ResolveImageConfig answers the digest of
    /// the index or manifest the tag points at), or None when unknown. A known digest pins the
    /// base image's source to `reference@digest`, as the Dockerfile frontend pins `FROM`, so a
    /// tag that moves during a build cannot mix images; unknown (offline) leaves it as written.
    fn digest(&self, _reference: &str, _platform: &Platform) -> Option<String> {
        None
    }
}

/// A resolver that knows no image: every base starts from an empty config.
pub struct NoImages;

impl ImageResolver for NoImages {
    fn config(&self, _: &str, _: &Platform) -> Option<Vec<u8>> {
        None
    }
}

/// Configs and digests resolved ahead of time, keyed by (reference, platform id).
#[derive(Clone, Debug, Default)]
pub struct ResolvedImages {
    pub configs: BTreeMap<(String, String), Vec<u8>>,
    pub digests: BTreeMap<(String, String), String>,
}

impl ImageResolver for ResolvedImages {
    fn config(&self, reference: &str, platform: &Platform) -> Option<Vec<u8>> {
        self.configs
            .get(&(reference.to_string(), platform.id()))
            .cloned()
    }

    fn digest(&self, reference: &str, platform: &Platform) -> Option<String> {
        self.digests
            .get(&(reference.to_string(), platform.id()))
            .cloned()
    }
}

/// `reference` pinned to `digest` the way the Dockerfile frontend pins `FROM`: the name and tag
/// as written, then `@digest` (`python:3.12-slim@sha256:…`). A reference that already names a
/// digest stays as written. Err for a digest that is not `algorithm:hex`.
pub fn pinned_reference(reference: &str, digest: &str) -> Result<String, String> {
    let valid = digest.split_once(':').is_some_and(|(alg, hex)| {
        !alg.is_empty()
            && alg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            && hex.len() >= 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if !valid {
        return Err(format!(
            "the engine resolved it to `{digest}`, which is not a digest (algorithm:hex)"
        ));
    }
    Ok(if reference.contains('@') {
        reference.to_string()
    } else {
        format!("{reference}@{digest}")
    })
}

/// The converter's result for one platform.
#[derive(Clone, Debug)]
pub struct Converted {
    pub definition: pb::Definition,
    /// `containerimage.config` JSON.
    pub image_config: Vec<u8>,
    pub platform: Platform,
    /// Probes to answer before this conversion is final (empty when it is).
    pub probes: Vec<Probe>,
}

#[derive(Clone)]
struct State {
    root: Output,
    /// The platform this state's execs run on.
    platform: Platform,
    /// Ignore the build cache for this state's steps (`--no-cache`, or a no-cache filter that
    /// names this image or one it is built on).
    no_cache: bool,
    /// The workdir this stack created (mkdir) and its owner: the one directory whose metadata
    /// a merged copy may safely restate.
    made_workdir: Option<(String, Option<String>)>,
    config: ImageConfig,
}

/// Convert a plan to LLB. `file` is the stack file (for the source map). Pip steps for a
/// foreign platform install under emulation (see [`convert_cross`]).
pub fn convert(
    plan: &Plan,
    opts: &BuildOptions,
    images: &dyn ImageResolver,
    file: &SourceFile,
) -> Result<Converted, Diagnostics> {
    convert_cross(plan, opts, images, file, None)
}

/// Convert a plan to LLB; with `cross`, pip steps for a platform other than the build
/// platform install its wheels on the build platform (the twin plan's images) and merge them
/// onto the target, unless a probe found that they cannot.
pub fn convert_cross(
    plan: &Plan,
    opts: &BuildOptions,
    images: &dyn ImageResolver,
    file: &SourceFile,
    cross: Option<CrossEnv<'_>>,
) -> Result<Converted, Diagnostics> {
    // SOURCE_DATE_EPOCH: the image's `created` and its history entries (reproducible configs).
    let created = opts
        .build_args
        .get("SOURCE_DATE_EPOCH")
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(rfc3339);
    let mut c = Converter {
        g: Graph::new(),
        opts,
        images,
        plan,
        diags: Diagnostics::default(),
        states: vec![],
        contexts: BTreeMap::new(),
        created: created.clone(),
        file,
        step_log: vec![],
        twin: cross.as_ref().and_then(|x| x.twin).map(|plan| Twin {
            plan,
            states: vec![],
            step_log: vec![],
        }),
        verdicts: cross.as_ref().map(|x| (x.verdicts, x.ask)),
        probes: vec![],
        cross_script: None,
        lean: false,
    };
    for img in &plan.images {
        let st = c.image(img);
        c.states.push(st);
    }
    if c.diags.has_errors() {
        return Err(c.diags.sorted());
    }
    let Some(st) = c.states.last().cloned() else {
        let mut d = Diagnostics::default();
        d.push(Diagnostic::error(
            "nothing to build: the plan has no images",
        ));
        return Err(d);
    };
    let mut config = st.config;
    for (k, v) in &opts.labels {
        config.labels.insert(k.clone(), v.clone());
    }
    let image_config = config
        .to_json(&plan.platform, created.as_deref())
        .map_err(|e| {
            let mut d = Diagnostics::default();
            d.push(Diagnostic::error(format!(
                "cannot write the image config: {e}"
            )));
            d
        })?;
    let definition = c.g.marshal(st.root, Some(file));
    Ok(Converted {
        definition,
        image_config,
        platform: plan.platform.clone(),
        probes: c.probes,
    })
}

/// The build platform's twin of the plan being converted: its states, converted on demand.
struct Twin<'a> {
    plan: &'a Plan,
    states: Vec<State>,
    step_log: Vec<Vec<State>>,
}

/// What a pip step runs (see [`Converter::pip_parts`]).
struct PipParts {
    /// The installer up to `install`.
    command: Vec<String>,
    /// Index options, `-r FILE`s and specifiers.
    args: Vec<String>,
    mounts: Vec<Mount>,
    env: Vec<(&'static str, String)>,
}

struct Converter<'a> {
    g: Graph,
    opts: &'a BuildOptions,
    images: &'a dyn ImageResolver,
    plan: &'a Plan,
    diags: Diagnostics,
    states: Vec<State>,
    /// One context source per set of paths, so a layer's vertices depend only on its own files.
    contexts: BTreeMap<Vec<String>, Output>,
    /// RFC 3339 time of SOURCE_DATE_EPOCH, for history entries.
    created: Option<String>,
    file: &'a SourceFile,
    /// Per image converted: its state before each step (cross-installs run on the twin's).
    step_log: Vec<Vec<State>>,
    twin: Option<Twin<'a>>,
    /// Probe verdicts and whether to ask for unknown ones.
    verdicts: Option<(&'a BTreeMap<String, CrossVerdict>, bool)>,
    probes: Vec<Probe>,
    /// The cross-install script on scratch (one vertex).
    cross_script: Option<Output>,
    /// Converting a twin: only what an installer's environment needs (base, apt, users,
    /// dirs, files); `run`, conda and pip steps are skipped.
    lean: bool,
}

fn meta(name: String, span: Span) -> VertexMeta {
    VertexMeta {
        name,
        span: Some(span),
        ..Default::default()
    }
}

impl<'a> Converter<'a> {
    fn platform(&self) -> &'a Platform {
        &self.plan.platform
    }

    fn base(&mut self, base: &Base, label: &str) -> State {
        match base {
            Base::Layer { index, .. } => self.states[*index].clone(),
            Base::Image { reference, span } => {
                let platform = self.platform();
                let config = match self.images.config(reference, platform) {
                    Some(bytes) => match ImageConfig::from_json(&bytes) {
                        Ok(c) => c,
                        Err(e) => {
                            self.diags.push(
                                Diagnostic::error(format!("base image `{reference}`: {e}"))
                                    .at(*span),
                            );
                            ImageConfig::default()
                        }
                    },
                    None => ImageConfig::default(),
                };
                let source = match self.images.digest(reference, platform) {
                    Some(digest) => match pinned_reference(reference, &digest) {
                        Ok(pinned) => pinned,
                        Err(e) => {
                            self.diags.push(
                                Diagnostic::error(format!("base image `{reference}`: {e}"))
                                    .at(*span),
                            );
                            reference.clone()
                        }
                    },
                    None => reference.clone(),
                };
                let mut m = meta(format!("[{label}] from {reference}"), *span);
                m.ignore_cache = false;
                let root = self.g.image(
                    &source,
                    platform,
                    self.opts.image_resolve_mode.as_deref(),
                    m,
                );
                State {
                    root,
                    platform: platform.clone(),
                    config,
                    no_cache: self.opts.no_cache,
                    made_workdir: None,
                }
            }
        }
    }

    /// The build context restricted to `paths` (plus `.dockerignore` excludes).
    fn context(&mut self, paths: &[String], label: &str, span: Span) -> Output {
        let mut key: Vec<String> = paths.to_vec();
        key.sort();
        key.dedup();
        if let Some(o) = self.contexts.get(&key) {
            return *o;
        }
        let ctx = &self.opts.context;
        let name = if ctx.name.is_empty() {
            "context"
        } else {
            ctx.name.as_str()
        };
        let mut attrs = BTreeMap::new();
        let include: Vec<String> = key
            .iter()
            .map(|p| {
                if p == "." {
                    "**".to_string()
                } else {
                    p.clone()
                }
            })
            .collect();
        attrs.insert(
            "local.includepattern".to_string(),
            serde_json::to_string(&include).expect("strings"),
        );
        if !ctx.exclude_patterns.is_empty() {
            attrs.insert(
                "local.excludepatterns".to_string(),
                serde_json::to_string(&ctx.exclude_patterns).expect("strings"),
            );
        }
        attrs.insert(
            "local.sharedkeyhint".to_string(),
            format!("{name}:{}", key.join(",")),
        );
        if !ctx.session_id.is_empty() {
            attrs.insert("local.session".to_string(), ctx.session_id.clone());
        }
        let out = self.g.local(
            name,
            attrs,
            meta(format!("[{label}] load context {}", key.join(" ")), span),
        );
        self.contexts.insert(key, out);
        out
    }

    fn network(&self) -> Option<NetMode> {
        match self.opts.network {
            Network::Sandbox => None,
            Network::Host => Some(NetMode::Host),
            Network::None => Some(NetMode::None),
        }
    }

    /// An exec as root with the image's env; install steps (apt, run, pip) also get the
    /// image's `install-env`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        st: &State,
        args: Vec<String>,
        img: &PlanImage,
        install: bool,
        extra_env: &[(&str, String)],
        mounts: Vec<Mount>,
        m: VertexMeta,
    ) -> Output {
        let mut config = st.config.clone();
        if install {
            for (k, v) in &img.install_env {
                config.set_env(k, v);
            }
        }
        for (k, v) in extra_env {
            config.set_env(k, v);
        }
        if config.get_env("HOME").is_none() {
            config.set_env("HOME", "/root");
        }
        // Reproducible builds: the steps see the build's SOURCE_DATE_EPOCH.
        if let Some(epoch) = self.opts.build_args.get("SOURCE_DATE_EPOCH") {
            config.set_env("SOURCE_DATE_EPOCH", epoch);
        }
        let mut mounts = mounts;
        let mut secret_env = vec![];
        if install {
            for sec in &self.plan.secrets {
                if let Some(target) = &sec.target {
                    mounts.push(Mount::Secret {
                        id: sec.id.clone(),
                        dest: target.clone(),
                        optional: !sec.required,
                    });
                }
                if let Some(env) = &sec.env {
                    secret_env.push((env.clone(), sec.id.clone(), !sec.required));
                }
            }
        }
        let exec = Exec {
            args,
            env: config.process_env(),
            cwd: if st.config.working_dir.is_empty() {
                "/".into()
            } else {
                st.config.working_dir.clone()
            },
            user: "root".into(),
            network: self.network(),
            extra_hosts: self.opts.extra_hosts.clone(),
            mounts,
            secret_env,
        };
        let mut m = m;
        m.ignore_cache = st.no_cache;
        self.g.exec(st.root, exec, &st.platform, m)
    }

    /// Cache ids are namespaced by platform and variant (a CUDA variant's Ubuntu apt lists
    /// must not meet a Debian base's).
    fn cache_slug(&self) -> String {
        self.cache_slug_for(self.platform())
    }

    fn cache_slug_for(&self, platform: &Platform) -> String {
        match &self.plan.variant {
            Some(v) => format!("{}-{v}", platform.slug()),
            None => platform.slug(),
        }
    }

    fn apt_mounts(&self) -> Vec<Mount> {
        let slug = self.cache_slug();
        vec![
            Mount::Cache {
                id: format!("layerstack-apt-cache-{slug}"),
                dest: "/var/cache/apt".into(),
                sharing: CacheSharing::Locked,
            },
            Mount::Cache {
                id: format!("layerstack-apt-lib-{slug}"),
                dest: "/var/lib/apt".into(),
                sharing: CacheSharing::Locked,
            },
        ]
    }

    fn apt(&mut self, st: &State, packages: &[String], img: &PlanImage, m: VertexMeta) -> Output {
        let script = format!(
            "set -eu; rm -f /etc/apt/apt.conf.d/docker-clean; \
             echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/keep-cache; \
             apt-get update; apt-get install -y --no-install-recommends {}",
            packages.join(" ")
        );
        let mounts = self.apt_mounts();
        self.run(
            st,
            vec!["/bin/sh".into(), "-c".into(), script],
            img,
            true,
            &[("DEBIAN_FRONTEND", "noninteractive".into())],
            mounts,
            m,
        )
    }

    /// A pip step: on the image's own platform, or, for a foreign platform, cross-installed
    /// on the build platform when the stack and a probe allow it.
    #[allow(clippy::too_many_arguments)]
    fn pip(
        &mut self,
        st: &State,
        pip: &PipStep,
        img: &PlanImage,
        label: &str,
        span: Span,
        m: VertexMeta,
        step: Option<usize>,
    ) -> Output {
        let mut m = m;
        let foreign = st.platform != self.opts.build_platform;
        if let Some((verdicts, ask)) = self.verdicts.filter(|_| foreign) {
            let why =
                if let Some(step) = step.filter(|_| self.opts.cross_install && img.cross_install) {
                    self.cross_pip(st, pip, img, label, span, &m, step, verdicts, ask)
                } else if step.is_none() {
                    Err("a venv builder installs under emulation".to_string())
                } else if !self.opts.cross_install {
                    Err("cross-install is off for this build".to_string())
                } else {
                    Err(format!("`cross-install = false` for {}", img.label()))
                };
            match why {
                Ok(out) => return out,
                Err(reason) => {
                    m.name = format!("{} (emulated on {}: {reason})", m.name, st.platform);
                }
            }
        }
        let parts = self.pip_parts(st, pip, img, label, span, &self.cache_slug());
        let mut args = parts.command;
        args.extend(parts.args);
        self.run(st, args, img, true, &parts.env, parts.mounts, m)
    }

    /// What a pip step runs: the installer command (up to `install`), its arguments, mounts
    /// and env. The tool (uv) runs on `st`'s platform; downloads are cached under `slug`.
    fn pip_parts(
        &mut self,
        st: &State,
        pip: &PipStep,
        img: &PlanImage,
        label: &str,
        span: Span,
        slug: &str,
    ) -> PipParts {
        let uv = match &pip.installer {
            Installer::Pip => None,
            Installer::Uv { version } => {
                Some(self.uv_tool(st, img, &pip.python, version.as_deref(), label, span))
            }
        };
        let command = match uv {
            None => vec![
                pip.python.clone(),
                "-m".into(),
                "pip".into(),
                "install".into(),
            ],
            Some(_) => {
                let mut a = vec![
                    format!("{UV_DIR}/bin/uv"),
                    "pip".into(),
                    "install".into(),
                    "--python".into(),
                    pip.python.clone(),
                ];
                // Outside a venv (our venvs' interpreters are `<venv>/bin/python`) uv needs
                // to be told to install into the interpreter's own environment.
                if !pip.python.ends_with("/bin/python") {
                    a.push("--system".into());
                }
                a
            }
        };
        let mut args = vec![];
        if let Some(u) = &pip.index_url {
            args.push("--index-url".into());
            args.push(u.clone());
        }
        for u in &pip.extra_index_urls {
            args.push("--extra-index-url".into());
            args.push(u.clone());
        }
        let mut mounts = match uv {
            None => vec![Mount::Cache {
                id: format!("layerstack-pip-{slug}"),
                dest: "/root/.cache/pip".into(),
                sharing: CacheSharing::Shared,
            }],
            Some(tool) => vec![
                Mount::Cache {
                    id: format!("layerstack-uv-{slug}"),
                    dest: "/root/.cache/uv".into(),
                    sharing: CacheSharing::Shared,
                },
                Mount::Bind {
                    input: tool,
                    selector: UV_DIR.into(),
                    dest: UV_DIR.into(),
                },
            ],
        };
        if !pip.requirements.is_empty() {
            let files = self.staged_files(&pip.requirements, label, "requirements", span);
            mounts.push(Mount::Bind {
                input: files,
                selector: String::new(),
                dest: REQUIREMENTS_DIR.into(),
            });
            for r in &pip.requirements {
                args.push("-r".into());
                args.push(format!("{REQUIREMENTS_DIR}/{r}"));
            }
        }
        args.extend(pip.specs.iter().cloned());
        if !pip.local.is_empty() {
            let files = self.staged_files(&pip.local, label, "packages", span);
            mounts.push(Mount::Output {
                input: Some(files),
                dest: PACKAGES_DIR.into(),
            });
            args.extend(pip.local.iter().map(|p| format!("{PACKAGES_DIR}/{p}")));
        }
        let env: Vec<(&'static str, String)> = match uv {
            None => vec![
                ("PIP_CACHE_DIR", "/root/.cache/pip".into()),
                ("PIP_DISABLE_PIP_VERSION_CHECK", "1".into()),
            ],
            Some(_) => vec![
                ("UV_CACHE_DIR", "/root/.cache/uv".into()),
                // The cache is a mount: copy out of it, never hard-link into it.
                ("UV_LINK_MODE", "copy".into()),
                ("UV_COMPILE_BYTECODE", "1".into()),
                // Like pip on the official images: install into the interpreter given.
                ("UV_BREAK_SYSTEM_PACKAGES", "1".into()),
            ],
        };
        PipParts {
            command,
            args,
            mounts,
            env,
        }
    }

    /// The cross-install script, as a file on scratch.
    fn cross_script(&mut self) -> Output {
        if let Some(o) = self.cross_script {
            return o;
        }
        let o = self.g.file(
            None,
            vec![FileAction::Mkfile {
                path: "/cross_install.py".into(),
                mode: 0o644,
                data: CROSS_SCRIPT.as_bytes().to_vec(),
                owner: None,
            }],
            &self.opts.build_platform,
            VertexMeta {
                name: "[internal] layerstack cross-install script".into(),
                ..Default::default()
            },
        );
        self.cross_script = Some(o);
        o
    }

    /// A pip step for a foreign platform, installed on the build platform's twin of this
    /// image (same interpreter, same paths; its own run, conda and pip steps skipped: the
    /// target's installed packages are read from the target) for the target's wheel tags,
    /// and merged onto the target. Err(reason) when it must be emulated instead: no twin, a platform without wheel
    /// tags, or a probe that found a source build or a conflict.
    #[allow(clippy::too_many_arguments)]
    fn cross_pip(
        &mut self,
        st: &State,
        pip: &PipStep,
        img: &PlanImage,
        label: &str,
        span: Span,
        m: &VertexMeta,
        step: usize,
        verdicts: &BTreeMap<String, CrossVerdict>,
        ask: bool,
    ) -> Result<Output, String> {
        let machine = st
            .platform
            .wheel_machine()
            .ok_or_else(|| format!("no wheel platform tags are known for {}", st.platform))?;
        let runner = self.twin_before(img, step).ok_or_else(|| {
            format!(
                "{} cannot be planned for the build platform {}",
                img.label(),
                self.opts.build_platform
            )
        })?;
        let slug = self.cache_slug();
        let parts = self.pip_parts(&runner, pip, img, label, span, &slug);
        let installer = match pip.installer {
            Installer::Pip => "pip",
            Installer::Uv { .. } => "uv",
        };
        let script = self.cross_script();
        let command = |mode: &str| -> Vec<String> {
            let mut a = vec![
                pip.python.clone(),
                format!("{CROSS_DIR}/cross_install.py"),
                mode.into(),
                installer.into(),
                machine.into(),
                st.platform.id(),
                pip.python.clone(),
                "--".into(),
            ];
            a.extend(parts.args.iter().cloned());
            a
        };
        let mut mounts = parts.mounts.clone();
        mounts.push(Mount::Bind {
            input: script,
            selector: String::new(),
            dest: CROSS_DIR.into(),
        });
        mounts.push(Mount::Bind {
            input: st.root,
            selector: String::new(),
            dest: CROSS_TARGET.into(),
        });
        let build = runner.platform.clone();
        // An exec on the runner whose result is one scratch mount (output 1; 0 is the
        // runner's root, thrown away).
        let on_runner =
            |c: &mut Self, mode: &str, dest: &str, name: String, probe: Option<Output>| -> Output {
                let mut mounts = mounts.clone();
                if let Some(input) = probe {
                    mounts.push(Mount::Bind {
                        input,
                        selector: String::new(),
                        dest: CROSS_PROBE.into(),
                    });
                }
                // Outputs: the root (0), then each output mount in order; ours is the last.
                let index = 1 + mounts
                    .iter()
                    .filter(|m| matches!(m, Mount::Output { .. }))
                    .count() as u32;
                mounts.push(Mount::Output {
                    input: None,
                    dest: dest.into(),
                });
                let exec = c.run(
                    &runner,
                    command(mode),
                    img,
                    true,
                    &parts.env,
                    mounts,
                    meta(name, span),
                );
                Output { index, ..exec }
            };
        // The probe: resolve only, and say whether every distribution has a wheel.
        let probe_name = format!("{}: wheels for {}? (probe on {build})", m.name, st.platform);
        let probe = on_runner(self, "probe", CROSS_STATUS, probe_name.clone(), None);
        let definition = self.g.marshal(probe, Some(self.file));
        let digests = op_digests(&definition);
        let key = digests[digests.len().saturating_sub(2)].clone();
        // An answered probe is mounted into the install (see CROSS_PROBE); an assumed verdict
        // (no probe asked: the CLI) leaves the install as it was.
        let answered = match verdicts.get(&key) {
            Some(CrossVerdict::Emulate(reason)) => return Err(reason.clone()),
            Some(CrossVerdict::Cross) => Some(probe),
            None if ask => {
                self.probes.push(Probe {
                    key,
                    definition,
                    name: probe_name,
                });
                None
            }
            None => None,
        };
        let name = format!("{} (cross-install on {build} for {})", m.name, st.platform);
        let files = on_runner(self, "install", CROSS_OUT, name.clone(), answered);
        let merged = if self.opts.merge {
            self.g.merge(
                vec![st.root, files],
                Self::cacheable(st, meta(format!("{name} (merge)"), span)),
            )
        } else {
            self.g.file(
                Some(st.root),
                vec![FileAction::Copy {
                    from: files,
                    src: "/".into(),
                    dest: "/".into(),
                    owner: None,
                    mode: None,
                    dir_contents: true,
                    exclude: vec![],
                    wildcard: false,
                }],
                &st.platform,
                Self::cacheable(st, meta(format!("{name} (copy)"), span)),
            )
        };
        Ok(merged)
    }

    /// The build platform's twin of `img` as it is before step `step`, converting the twin
    /// plan's images up to it on first use. None when the twin plan has no such image or its
    /// steps differ in kind.
    fn twin_before(&mut self, img: &PlanImage, step: usize) -> Option<State> {
        let mut twin = self.twin.take()?;
        let idx = twin.plan.images.iter().position(|i| i.name == img.name);
        let aligned = idx.is_some_and(|i| {
            let t = &twin.plan.images[i];
            t.steps.len() == img.steps.len()
                && t.steps.iter().zip(&img.steps).all(|(a, b)| {
                    std::mem::discriminant(&a.kind) == std::mem::discriminant(&b.kind)
                })
        });
        if let (Some(idx), true) = (idx, aligned) {
            let plan = std::mem::replace(&mut self.plan, twin.plan);
            std::mem::swap(&mut self.states, &mut twin.states);
            std::mem::swap(&mut self.step_log, &mut twin.step_log);
            let verdicts = self.verdicts.take();
            self.lean = true;
            while self.states.len() <= idx {
                let twin_plan = self.plan;
                let st = self.image(&twin_plan.images[self.states.len()]);
                self.states.push(st);
            }
            self.lean = false;
            self.verdicts = verdicts;
            self.plan = plan;
            std::mem::swap(&mut self.states, &mut twin.states);
            std::mem::swap(&mut self.step_log, &mut twin.step_log);
        }
        let found = if aligned {
            idx.and_then(|i| twin.step_log.get(i))
                .and_then(|steps| steps.get(step))
                .cloned()
        } else {
            None
        };
        self.twin = Some(twin);
        found
    }

    /// Context files copied onto scratch (keeping their paths), to mount read-only into a step:
    /// the step's cache key then depends on exactly these files.
    fn staged_files(&mut self, paths: &[String], label: &str, what: &str, span: Span) -> Output {
        let ctx = self.context(paths, label, span);
        let actions = paths
            .iter()
            .map(|r| FileAction::Copy {
                from: ctx,
                src: format!("/{r}"),
                dest: format!("/{r}"),
                owner: None,
                mode: None,
                dir_contents: false,
                exclude: vec![],
                wildcard: false,
            })
            .collect();
        self.g.file(
            None,
            actions,
            self.platform(),
            meta(format!("[{label}] {what} {}", paths.join(" ")), span),
        )
    }

    /// `micromamba install -y -n ENV -f FILE` with the package cache as a locked cache mount.
    fn conda(
        &mut self,
        st: &State,
        c: &CondaStep,
        img: &PlanImage,
        label: &str,
        span: Span,
        m: VertexMeta,
    ) -> Output {
        let files = self.staged_files(std::slice::from_ref(&c.file), label, "environment", span);
        let file = format!("{CONDA_DIR}/{}", c.file);
        // micromamba: `install` into base, `create` for another env; conda/mamba read an
        // environment file with `env update` (`install -f` means --force there).
        let mut args: Vec<String> = match (c.installer.as_str(), c.env.as_str()) {
            ("micromamba", "base") => vec![
                "micromamba".into(),
                "install".into(),
                "-y".into(),
                "-n".into(),
                "base".into(),
                "-f".into(),
                file,
            ],
            ("micromamba", env) => vec![
                "micromamba".into(),
                "create".into(),
                "-y".into(),
                "-n".into(),
                env.into(),
                "-f".into(),
                file,
            ],
            (tool, env) => vec![
                tool.into(),
                "env".into(),
                "update".into(),
                "-n".into(),
                env.into(),
                "-f".into(),
                file,
            ],
        };
        for ch in &c.channels {
            args.push("-c".into());
            args.push(ch.clone());
        }
        let mounts = vec![
            Mount::Cache {
                id: format!("layerstack-conda-{}", self.cache_slug()),
                dest: c.cache.clone(),
                sharing: CacheSharing::Locked,
            },
            Mount::Bind {
                input: files,
                selector: String::new(),
                dest: CONDA_DIR.into(),
            },
        ];
        // Whatever the image's root prefix, the packages go to the cache mount.
        self.run(
            st,
            args,
            img,
            true,
            &[("CONDA_PKGS_DIRS", c.cache.clone())],
            mounts,
            m,
        )
    }

    /// uv, installed from PyPI with pip into a directory of a throwaway state on `st` (so it
    /// runs on the target platform), mounted read-only into install steps.
    fn uv_tool(
        &mut self,
        st: &State,
        img: &PlanImage,
        python: &str,
        version: Option<&str>,
        label: &str,
        span: Span,
    ) -> Output {
        let spec = match version {
            Some(v) => format!("uv=={v}"),
            None => "uv".to_string(),
        };
        let args = vec![
            python.to_string(),
            "-m".into(),
            "pip".into(),
            "install".into(),
            "--target".into(),
            UV_DIR.into(),
            spec.clone(),
        ];
        let mounts = vec![Mount::Cache {
            id: format!("layerstack-pip-{}", self.cache_slug_for(&st.platform)),
            dest: "/root/.cache/pip".into(),
            sharing: CacheSharing::Shared,
        }];
        let env = [
            ("PIP_CACHE_DIR", "/root/.cache/pip".to_string()),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1".to_string()),
        ];
        self.run(
            st,
            args,
            img,
            true,
            &env,
            mounts,
            meta(format!("[{label}] install {spec}"), span),
        )
    }

    /// `appuser` → `1000:1000` when this plan creates the user with a uid; numbers as they are.
    fn numeric_owner(&self, owner: &str) -> Option<String> {
        let (user, group) = match owner.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (owner, None),
        };
        let ids = |name: &str| -> Option<(u32, u32)> {
            if let Ok(n) = name.parse::<u32>() {
                return Some((n, n));
            }
            self.plan
                .images
                .iter()
                .flat_map(|i| i.steps.iter())
                .find_map(|s| match &s.kind {
                    StepKind::CreateUser(u) if u.name == name => {
                        u.uid.map(|uid| (uid, u.gid.unwrap_or(uid)))
                    }
                    _ => None,
                })
        };
        let (uid, gid) = ids(user)?;
        let gid = match group {
            Some(g) => ids(g)?.1,
            None => gid,
        };
        Some(format!("{uid}:{gid}"))
    }

    fn owner(&self, o: &Option<String>) -> Option<Owner> {
        o.as_deref().map(Owner::parse)
    }

    fn image(&mut self, img: &PlanImage) -> State {
        let label = img.label();
        let mut st = self.base(&img.base, &label);
        if self.opts.no_cache_filter.iter().any(|n| *n == img.name) {
            st.no_cache = true;
        }
        // An image's env applies to its own steps too (like ENV before RUN).
        for (k, v) in &img.config.env {
            // `${VAR}` refers to the env as it is here (Dockerfile ENV semantics).
            let mut env = st.config.env_map();
            env.entry("PATH".into())
                .or_insert_with(|| crate::image::DEFAULT_PATH.into());
            let value = interpolate(v, &env, Unknown::Empty).unwrap_or_else(|_| v.clone());
            st.config.set_env(k, &value);
        }
        let n = img.steps.len();
        let mut log = Vec::with_capacity(n);
        for (i, step) in img.steps.iter().enumerate() {
            log.push(st.clone());
            if self.lean
                && matches!(
                    step.kind,
                    StepKind::Run { .. } | StepKind::Pip(_) | StepKind::Conda(_)
                )
            {
                continue;
            }
            let name = format!("[{label} {}/{n}] {}", i + 1, step.kind.describe());
            let m = meta(name.clone(), step.span);
            let created_by = format!("layerstack: {name}");
            match &step.kind {
                StepKind::Apt { packages } => st.root = self.apt(&st, packages, img, m),
                StepKind::CreateUser(u) => {
                    let script = useradd_script(u);
                    st.root = self.run(
                        &st,
                        vec!["/bin/sh".into(), "-c".into(), script],
                        img,
                        false,
                        &[],
                        vec![],
                        m,
                    );
                }
                StepKind::Mkdir { path, owner } => {
                    let o = self.owner(owner);
                    st.root = self.g.file(
                        Some(st.root),
                        vec![FileAction::Mkdir {
                            path: path.clone(),
                            mode: 0o755,
                            owner: o,
                        }],
                        self.platform(),
                        Self::cacheable(&st, m),
                    );
                    st.config.working_dir = path.clone();
                    st.made_workdir = Some((path.clone(), owner.clone()));
                }
                StepKind::Run { command, context } => {
                    let args = vec!["/bin/sh".into(), "-c".into(), command.clone()];
                    if context.is_empty() {
                        st.root = self.run(&st, args, img, true, &[], vec![], m);
                    } else {
                        // The files it reads, writable (builds write into their tree) but
                        // never in the image, and the command runs among them.
                        let files = self.staged_files(context, &label, "context", step.span);
                        let mounts = vec![Mount::Output {
                            input: Some(files),
                            dest: RUN_CONTEXT_DIR.into(),
                        }];
                        let mut at = st.clone();
                        at.config.working_dir = RUN_CONTEXT_DIR.into();
                        st.root = self.run(&at, args, img, true, &[], mounts, m);
                    }
                }
                StepKind::Pip(p) => st.root = self.pip(&st, p, img, &label, step.span, m, Some(i)),
                StepKind::Conda(c) => st.root = self.conda(&st, c, img, &label, step.span, m),
                StepKind::Copy {
                    src,
                    dest,
                    owner,
                    mode,
                    exclude,
                } => {
                    let ctx = self.context(std::slice::from_ref(src), &label, step.span);
                    let dest = resolve_dest(&st.config.working_dir, src, dest.as_deref());
                    let wildcard = src.contains(['*', '?', '[']);
                    // With MergeOp, a service's files are copied onto scratch and merged onto
                    // its base: the copy does not depend on the base, so a new base re-runs
                    // only the merge. That needs the owner as numbers (no /etc/passwd in
                    // scratch); owners this stack created with a uid have them.
                    let numeric = owner.as_deref().map(|o| self.numeric_owner(o));
                    // The merged layer restates the metadata of every parent directory the copy
                    // creates on scratch: merge only into a workdir this stack made, owned by
                    // the copy's owner, so the parents it restates are the same as the base's.
                    let safe_parents = st.made_workdir.as_ref().is_some_and(|(wd, wd_owner)| {
                        dest.starts_with(&format!("{}/", wd.trim_end_matches('/')))
                            && wd_owner == owner
                    });
                    let merge = self.opts.merge
                        && img.kind == crate::stack::Kind::Service
                        && safe_parents
                        && numeric.as_ref().is_none_or(|n| n.is_some());
                    let action = FileAction::Copy {
                        from: ctx,
                        src: if src == "." {
                            "/".into()
                        } else {
                            format!("/{src}")
                        },
                        dest,
                        owner: if merge {
                            numeric.flatten().map(|o| Owner::parse(&o))
                        } else {
                            self.owner(owner)
                        },
                        mode: *mode,
                        dir_contents: true,
                        exclude: exclude.clone(),
                        wildcard,
                    };
                    if merge {
                        let files = self.g.file(
                            None,
                            vec![action],
                            self.platform(),
                            Self::cacheable(&st, m.clone()),
                        );
                        let mut mm = m;
                        mm.name = format!("{} (merge)", mm.name);
                        st.root = self.g.merge(vec![st.root, files], Self::cacheable(&st, mm));
                    } else {
                        st.root = self.g.file(
                            Some(st.root),
                            vec![action],
                            self.platform(),
                            Self::cacheable(&st, m),
                        );
                    }
                }
                StepKind::CopyVenv { path, owner } => {
                    let Some(v) = &img.venv else { continue };
                    let builder = self.venv_builder(img, v);
                    let action = FileAction::Copy {
                        from: builder,
                        src: path.clone(),
                        dest: path.clone(),
                        owner: self.owner(owner),
                        mode: None,
                        dir_contents: true,
                        exclude: vec![],
                        wildcard: false,
                    };
                    st.root = self.g.file(
                        Some(st.root),
                        vec![action],
                        self.platform(),
                        Self::cacheable(&st, m),
                    );
                    let old_path = st
                        .config
                        .get_env("PATH")
                        .unwrap_or(crate::image::DEFAULT_PATH)
                        .to_string();
                    st.config.set_env("PATH", &format!("{path}/bin:{old_path}"));
                    st.config.set_env("VIRTUAL_ENV", path);
                }
            }
            st.config.history.push(HistoryEntry {
                created_by,
                empty_layer: false,
                created: self.created.clone(),
            });
        }
        self.apply_config(img, &mut st.config);
        self.step_log.push(log);
        st
    }

    fn cacheable(st: &State, mut m: VertexMeta) -> VertexMeta {
        m.ignore_cache = st.no_cache;
        m
    }

    /// The builder stage of a two-stage service; returns the state holding the venv.
    fn venv_builder(&mut self, img: &PlanImage, v: &crate::plan::VenvPlan) -> Output {
        let label = format!("{} venv", img.label());
        let mut st = self.base(&v.builder, &label);
        if self.opts.no_cache_filter.iter().any(|n| *n == img.name) {
            st.no_cache = true;
        }
        let python = v.python.clone();
        let n = 2 + usize::from(!v.apt.is_empty());
        let mut i = 0;
        let mut next = |what: String| {
            i += 1;
            format!("[{label} {i}/{n}] {what}")
        };
        if !v.apt.is_empty() {
            let name = next(format!("apt-get install {}", v.apt.join(" ")));
            st.root = self.apt(&st, &v.apt, img, meta(name, v.span));
        }
        let name = next(format!("{python} -m venv {}", v.path));
        st.root = self.run(
            &st,
            vec![python.clone(), "-m".into(), "venv".into(), v.path.clone()],
            img,
            false,
            &[],
            vec![],
            meta(name, v.span),
        );
        let name = next(v.pip.describe());
        let pip = v.pip.clone();
        st.root = self.pip(
            &st,
            &pip,
            img,
            &label,
            v.pip_span,
            meta(name, v.pip_span),
            None,
        );
        st.root
    }

    fn apply_config(&mut self, img: &PlanImage, c: &mut ImageConfig) {
        let ch = &img.config;
        if let Some(w) = &ch.workdir {
            c.working_dir = w.clone();
        }
        if let Some(u) = &ch.user {
            c.user = u.clone();
        }
        if let Some(e) = &ch.entrypoint {
            c.entrypoint = Some(e.clone());
            // Like Dockerfile: a new entrypoint resets an inherited cmd.
            if ch.cmd.is_none() {
                c.cmd = None;
            }
        }
        if let Some(cmd) = &ch.cmd {
            c.cmd = Some(cmd.clone());
        }
        let mut ports: BTreeSet<String> = c.exposed_ports.iter().cloned().collect();
        ports.extend(ch.exposed_ports.iter().cloned());
        c.exposed_ports = ports.into_iter().collect();
        if let Some(h) = &ch.healthcheck {
            c.healthcheck = h.clone();
        }
        for (k, v) in &ch.labels {
            c.labels.insert(k.clone(), v.clone());
        }
        if let Some(s) = &ch.stop_signal {
            c.stop_signal = Some(s.clone());
        }
        let summary = format!("layerstack: [{}] config", img.label());
        c.history.push(HistoryEntry {
            created_by: summary,
            empty_layer: true,
            created: self.created.clone(),
        });
    }
}

/// Where a copy lands: an explicit absolute dest, a dest relative to the workdir, or the
/// source path under the workdir.
fn resolve_dest(workdir: &str, src: &str, dest: Option<&str>) -> String {
    let wd = if workdir.is_empty() { "/" } else { workdir };
    let join = |rel: &str| -> String {
        let rel = rel.trim_start_matches("./");
        if rel.is_empty() || rel == "." {
            return format!("{}/", wd.trim_end_matches('/'));
        }
        format!("{}/{}", wd.trim_end_matches('/'), rel)
    };
    match dest {
        Some(d) if d.starts_with('/') => d.to_string(),
        Some(d) => join(d),
        None if src == "." => join("."),
        // `scripts/*.sh` lands in `<workdir>/scripts/`.
        None if src.contains(['*', '?', '[']) => match src.rsplit_once('/') {
            Some((dir, _)) => format!("{}/", join(dir).trim_end_matches('/')),
            None => join("."),
        },
        None => join(src.trim_end_matches('/')),
    }
}

fn useradd_script(u: &UserPlan) -> String {
    let name = &u.name;
    let home = u.home.clone().unwrap_or_else(|| format!("/home/{name}"));
    let gid = u
        .gid
        .or(u.uid)
        .map(|g| format!(" -g {g}"))
        .unwrap_or_default();
    let uid = u.uid.map(|g| format!(" -u {g}")).unwrap_or_default();
    let shell = match &u.shell {
        Some(s) => s.clone(),
        None => "$(if [ -x /bin/bash ]; then echo /bin/bash; else echo /bin/sh; fi)".into(),
    };
    format!(
        "set -eu; if ! id -u {name} >/dev/null 2>&1; then \
         getent group {name} >/dev/null 2>&1 || groupadd{gid} {name}; \
         useradd --no-log-init -m -d {home}{uid} -g {name} -s {shell} {name}; fi"
    )
}

/// RFC 3339 in UTC for a unix timestamp (for `SOURCE_DATE_EPOCH`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_destinations() {
        assert_eq!(resolve_dest("/app", "apps/api", None), "/app/apps/api");
        assert_eq!(resolve_dest("/app", "apps/api/", None), "/app/apps/api");
        assert_eq!(resolve_dest("", "main.py", None), "/main.py");
        assert_eq!(resolve_dest("/app", "src", Some("./code/")), "/app/code/");
        assert_eq!(resolve_dest("/app", "src", Some("/opt/x")), "/opt/x");
        assert_eq!(resolve_dest("/app", ".", None), "/app/");
        assert_eq!(resolve_dest("/app", "scripts/*.sh", None), "/app/scripts/");
        assert_eq!(resolve_dest("/app", "*.py", None), "/app/");
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
