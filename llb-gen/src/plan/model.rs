//! The plan model: plain data for one target (images, steps, config changes). No LLB here.

use std::collections::BTreeSet;

use crate::diag::Diagnostics;
use crate::platform::Platform;
use crate::source::Span;
use crate::stack::Kind;

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
    /// The named contexts that are images which the plan reads (`//NAME/PATH` context paths)
    /// or builds on ([`Base::Context`]): NAME → where the image comes from.
    pub image_contexts: std::collections::BTreeMap<String, super::ImageContext>,
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
            if let Some(v) = &img.venv
                && let Base::Image { reference, .. } = &v.builder
            {
                refs.insert(reference.clone());
            }
        }
        // Image contexts are resolved (config, digest) like bases.
        for c in self.image_contexts.values() {
            if let super::ImageContext::Image(reference) = c {
                refs.insert(reference.clone());
            }
        }
        refs
    }

    /// Whether each image of `images` is a part of the target itself: the target, the layers
    /// it is built on and venv builders — not the images it only copies artifacts from (and
    /// what only they need), whose packages never reach the target.
    pub fn in_target(&self) -> Vec<bool> {
        let mut out = vec![false; self.images.len()];
        let mut todo: Vec<usize> = self.images.len().checked_sub(1).into_iter().collect();
        while let Some(i) = todo.pop() {
            if std::mem::replace(&mut out[i], true) {
                continue;
            }
            let img = &self.images[i];
            for b in std::iter::once(&img.base).chain(img.venv.as_ref().map(|v| &v.builder)) {
                if let Base::Layer { index, .. } = b
                    && *index < out.len()
                {
                    todo.push(*index);
                }
            }
        }
        out
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
    /// The image is built by BuildKit's Dockerfile frontend (`dockerfile = …`): the edge
    /// solves it and hands the converter its result and config, keyed by
    /// [`DockerfileBuild::key`].
    Dockerfile(DockerfileBuild),
    /// A named context that is an image (bake `contexts = { NAME = "target:OTHER" }`, the
    /// other target's result), named by `from = "NAME"`: its source is
    /// [`Plan::image_contexts`]`[name]`.
    Context { name: String, span: Span },
}

impl Base {
    /// The span of the value that names the base.
    pub fn span(&self) -> Span {
        match self {
            Base::Image { span, .. } | Base::Layer { span, .. } | Base::Context { span, .. } => {
                *span
            }
            Base::Dockerfile(d) => d.span,
        }
    }
}

/// A Dockerfile build, as the Dockerfile frontend is asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerfileBuild {
    /// The Dockerfile's path in the build context (`services/auth/Dockerfile`).
    pub file: String,
    /// The context directory it builds with (`.` = the whole build context).
    pub context: String,
    /// The stage built; None = the last.
    pub target: Option<String>,
    /// Build args (`build-arg:NAME`), interpolated.
    pub args: Vec<(String, String)>,
    /// The `dockerfile` value in the stack file.
    pub span: Span,
}

impl DockerfileBuild {
    /// One line that tells builds apart: identical builds are one solve at the edge and one
    /// answer for the converter.
    pub fn key(&self) -> String {
        serde_json::json!([self.file, self.context, self.target, self.args]).to_string()
    }

    /// `services/auth/Dockerfile (target runtime)`: how plans and vertex names show it.
    pub fn describe(&self) -> String {
        match &self.target {
            Some(t) => format!("dockerfile {} --target {t}", self.file),
            None => format!("dockerfile {}", self.file),
        }
    }
}

impl Plan {
    /// The images of the plan BuildKit's Dockerfile frontend builds: (image index, build).
    pub fn dockerfile_builds(&self) -> Vec<(usize, &DockerfileBuild)> {
        self.images
            .iter()
            .enumerate()
            .filter_map(|(i, img)| match &img.base {
                Base::Dockerfile(d) => Some((i, d)),
                _ => None,
            })
            .collect()
    }
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
    /// Pip steps for the build platform are resolved into a lock and installed as lock
    /// groups (`resolve`, or `[stack] resolve`; the build's `LAYERSTACK_RESOLVE` turns it on
    /// for every image).
    pub resolve: bool,
    /// `build-only = true`: never shipped (no bake target).
    pub build_only: bool,
    /// The interpreter of this image's pip steps: its own `python`, else its base layer's,
    /// else `[stack] python`, else `python3` (inherited down `from` chains).
    pub python: String,
    /// The image's own or inherited `torch-backend` (value, span, key), if any; None = the
    /// variant's `torch`, else `cpu`.
    pub torch_backend: Option<(String, Span, String)>,
    /// The image, or a layer it is built on, has a platform overlay that sets `from` or
    /// `python` for this platform or the build platform: its interpreter may differ from its
    /// build-platform twin's, so its pip steps never cross-install.
    pub platform_specific: bool,
}

impl PlanImage {
    /// `[layer ml]`, the prefix of every vertex name of this image.
    pub fn label(&self) -> String {
        format!("{} {}", self.kind.as_str(), self.name)
    }

    /// The images this one copies artifacts from (`copy = { from = … }`), in step order.
    pub fn copy_sources(&self) -> impl Iterator<Item = &Base> {
        self.steps.iter().filter_map(|s| match &s.kind {
            StepKind::CopyFrom { from, .. } => Some(from),
            _ => None,
        })
    }
}

/// The shell a shell-form `cmd` or `entrypoint` runs with when the image's config sets no
/// `Shell` (Docker's and BuildKit's default).
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The first word of a healthcheck's `Test` in Docker's image config: run the rest as it is
/// (`CMD`), or as one command line through the container's shell (`CMD-SHELL`).
pub const HEALTHCHECK_EXEC: &str = "CMD";
pub const HEALTHCHECK_SHELL: &str = "CMD-SHELL";

/// A `cmd` or `entrypoint`: an argv as written (exec form), or a command line the image's shell
/// runs (shell form; the shell is known only with the base image's config, at conversion).
#[derive(Clone, PartialEq, Eq)]
pub enum Process {
    Exec(Vec<String>),
    Shell(String),
}

/// The argv with the default shell: how plan snapshots (`report/plan_text.rs`) show it.
impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.argv(None).fmt(f)
    }
}

impl Process {
    /// The argv: a shell-form command line run by `shell` (the image config's `Shell`), or by
    /// [`DEFAULT_SHELL`] when it has none.
    pub fn argv(&self, shell: Option<&[String]>) -> Vec<String> {
        match self {
            Process::Exec(argv) => argv.clone(),
            Process::Shell(line) => {
                let mut argv: Vec<String> = match shell.filter(|s| !s.is_empty()) {
                    Some(s) => s.to_vec(),
                    None => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
                };
                argv.push(line.clone());
                argv
            }
        }
    }
}

/// Image config set by one image (applied on top of its base's config).
#[derive(Clone, Debug, Default)]
pub struct ConfigChanges {
    /// Values may still hold `${VAR}` references to the env as it is when applied.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub cmd: Option<Process>,
    pub entrypoint: Option<Process>,
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
    Apt(AptStep),
    CreateUser(UserPlan),
    Mkdir {
        path: String,
        owner: Option<String>,
    },
    Run {
        command: String,
        /// Context paths the command reads: mounted at its working directory.
        context: Vec<String>,
        /// `at = "after-conda"`: the conda environment the command runs in, as
        /// (installer, env) of the image's `conda` step.
        activate: Option<(String, String)>,
    },
    Pip(PipStep),
    /// Packages from a lock file: every wheel a checksummed download, one layer per group.
    Lock(LockStep),
    /// A conda environment file installed with micromamba/mamba/conda.
    Conda(CondaStep),
    /// Copy from the build context.
    Copy {
        src: String,
        dest: Option<String>,
        owner: Option<String>,
        mode: Option<u32>,
        exclude: Vec<String>,
        /// `optional = true`: a `src` that matches nothing copies nothing.
        optional: bool,
    },
    /// Copy an artifact out of another image of the plan (`copy = { from = … }`): its
    /// final state, built for the same platform.
    CopyFrom {
        /// The image copied from (always [`Base::Layer`]: a layer or service of the plan).
        from: Base,
        /// An absolute path in that image (wildcards allowed).
        src: String,
        /// Absolute, or relative to the workdir; None: where `src` was (its directory for a
        /// pattern).
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
            StepKind::Apt(a) => a.describe(),
            StepKind::CreateUser(u) => format!("useradd {}", u.name),
            StepKind::Mkdir { path, .. } => format!("workdir {path}"),
            StepKind::Run { command, .. } => format!("run {}", one_line(command)),
            StepKind::Pip(p) => p.describe(),
            StepKind::Lock(l) => l.describe(),
            StepKind::Conda(c) => format!(
                "{} install -f {}",
                c.installer,
                super::ctxpath::display(&c.file)
            ),
            StepKind::Copy { src, .. } => format!("copy {}", super::ctxpath::display(src)),
            StepKind::CopyFrom { from, src, .. } => match from {
                Base::Layer { name, .. } => format!("copy --from={name} {src}"),
                Base::Image { reference, .. } => format!("copy --from={reference} {src}"),
                Base::Dockerfile(d) => format!("copy --from={} {src}", d.file),
                Base::Context { name, .. } => format!("copy --from={name} {src}"),
            },
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

/// One apt step: extra sources written first, then `apt-get update` and one
/// `apt-get install` of packages and local `.deb` files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AptStep {
    pub packages: Vec<String>,
    /// Context paths of local `.deb` files, installed with the packages.
    pub debs: Vec<String>,
    /// Install recommended packages too (without `--no-install-recommends`).
    pub recommends: bool,
    pub sources: Vec<AptSource>,
}

impl AptStep {
    /// A plain package list: no debs, no sources, no recommends.
    pub fn plain(packages: Vec<String>) -> AptStep {
        AptStep {
            packages,
            ..AptStep::default()
        }
    }

    /// The context files the step reads: its `.deb` files and the sources' key files.
    pub fn context_files(&self) -> Vec<String> {
        let mut out = self.debs.clone();
        out.extend(self.sources.iter().filter_map(|s| match &s.signed_by {
            SignedBy::Context(p) => Some(p.clone()),
            _ => None,
        }));
        out
    }

    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.packages.clone();
        parts.extend(self.debs.iter().map(|d| match super::ctxpath::split(d) {
            (Some(c), d) => format!("{c}:./{d}"),
            (None, d) => format!("./{d}"),
        }));
        let mut text = format!("apt-get install {}", parts.join(" "));
        if !self.sources.is_empty() {
            let names: Vec<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
            text = format!("apt sources {}; {text}", names.join(" "));
        }
        if self.recommends {
            text.push_str(" (with recommends)");
        }
        one_line(&text)
    }
}

/// A deb822 apt source, `/etc/apt/sources.list.d/layerstack-NAME.sources`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptSource {
    pub name: String,
    pub types: Vec<String>,
    pub uris: Vec<String>,
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    pub signed_by: SignedBy,
}

impl AptSource {
    /// Where a key file from the context is installed in the image.
    pub fn keyring_path(&self) -> Option<String> {
        match &self.signed_by {
            SignedBy::Context(p) => {
                let ext = if p.ends_with(".asc") { "asc" } else { "gpg" };
                Some(format!("/etc/apt/keyrings/layerstack-{}.{ext}", self.name))
            }
            _ => None,
        }
    }

    /// The deb822 stanza, one line per element (continuation lines start with a space).
    pub fn deb822(&self) -> Vec<String> {
        let mut lines = vec![];
        let mut field = |name: &str, values: &[String]| {
            if !values.is_empty() {
                lines.push(format!("{name}: {}", values.join(" ")));
            }
        };
        field("Types", &self.types);
        field("URIs", &self.uris);
        field("Suites", &self.suites);
        field("Components", &self.components);
        field("Architectures", &self.architectures);
        match &self.signed_by {
            SignedBy::None => {}
            SignedBy::Context(_) => lines.push(format!(
                "Signed-By: {}",
                self.keyring_path().unwrap_or_default()
            )),
            SignedBy::Path(p) => lines.push(format!("Signed-By: {p}")),
            SignedBy::Inline(key) => {
                lines.push("Signed-By:".into());
                for l in key.lines() {
                    let l = l.trim_end();
                    lines.push(if l.is_empty() {
                        " .".into()
                    } else {
                        format!(" {l}")
                    });
                }
            }
        }
        lines
    }
}

/// Which key signs an apt source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignedBy {
    /// The keys apt trusts already.
    None,
    /// A key file in the build context, installed under /etc/apt/keyrings.
    Context(String),
    /// A keyring already in the image.
    Path(String),
    /// An armored key written into the source file.
    Inline(String),
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
    /// Files the requirements files include (`-r`, `-c`), staged with them but not passed
    /// to pip.
    pub includes: Vec<String>,
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
            parts.push(format!("-r {}", super::ctxpath::display(r)));
        }
        parts.extend(self.specs.iter().cloned());
        parts.extend(self.local.iter().map(|p| match super::ctxpath::split(p) {
            (Some(c), p) => format!("{c}:./{p}"),
            (None, p) => format!("./{p}"),
        }));
        one_line(&parts.join(" "))
    }
}

/// Packages selected from a lock file for the plan's platform and the image's Python,
/// grouped into layers ([`crate::lock::group`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockStep {
    /// The lock file's context path.
    pub file: String,
    /// The interpreter the groups are installed for (the stack's `python`), which must be in
    /// the image's root base image: the installer runs there, on the build platform.
    pub python: String,
    /// The CPython version selected for (`3.12`).
    pub python_version: String,
    /// The groups, sorted by id; every file a wheel or an sdist with URL and sha256. An
    /// sdist is built into a wheel on the target platform (in the image as it is before the
    /// lock step: its compilers, emulated for a foreign platform) and installed like a wheel.
    pub groups: Vec<crate::lock::group::Group>,
    /// The id of the secret whose value is every download's `Authorization` header.
    pub auth_secret: Option<String>,
    /// Where an sdist build finds its build requirements (the image's `index-url` and
    /// `extra-index-urls`; none: the installer's default).
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
}

impl LockStep {
    /// The files that are sdists, built on the target platform before their group installs.
    pub fn sdists(&self) -> impl Iterator<Item = &crate::lock::select::LockedFile> {
        self.groups
            .iter()
            .flat_map(|g| g.files.iter())
            .filter(|f| f.kind == crate::lock::select::FileKind::Sdist)
    }

    pub fn describe(&self) -> String {
        let n: usize = self.groups.iter().map(|g| g.files.len()).sum();
        format!(
            "lock {}: {n} package{} in {} group{}",
            self.file,
            if n == 1 { "" } else { "s" },
            self.groups.len(),
            if self.groups.len() == 1 { "" } else { "s" }
        )
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
