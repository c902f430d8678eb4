//! The stack model: what stack.toml says, as plain data with spans (no LLB, no interpolation yet).

use crate::source::Span;

/// A value with the span of the TOML text it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Sp<T> {
        Sp { value, span }
    }
}

impl Sp<String> {
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// A whole stack file.
#[derive(Clone, Debug, Default)]
pub struct Stack {
    /// The `# syntax=` directive of line 1, if present.
    pub syntax: Option<Sp<String>>,
    pub name: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
    /// `stack.default`: the target built when `--target` is not given.
    pub default_target: Option<Sp<String>>,
    /// The interpreter used for pip and venv steps (`python3` unless set).
    pub python: Option<Sp<String>>,
    /// `pip` (default), `uv` or `uv==VERSION`: what installs Python requirements.
    pub installer: Option<Sp<String>>,
    /// Platforms built when the request names none.
    pub platforms: Vec<Sp<String>>,
    /// Tag templates for `llb-gen bake`: `${NAME}` (the image), `${HASH}` (its content hash)
    /// and stack args, e.g. `"${REGISTRY}/${OWNER}/${NAME}:${VERSION}"`.
    pub tags: Vec<Sp<String>>,
    /// Env for every install step of every image (not written to images).
    pub install_env: Vec<EnvVar>,
    pub args: Vec<ArgDef>,
    /// Layers and services in file order.
    pub images: Vec<ImageDef>,
    /// `[torch]`: the PyTorch package set, resolved per platform and variant.
    pub torch: Option<TorchDef>,
    /// `[variants.NAME]`, in file order.
    pub variants: Vec<VariantDef>,
    /// `[secrets.NAME]`: BuildKit secrets (`--secret id=NAME,…`) given to every install step.
    pub secrets: Vec<SecretDef>,
    /// `stack.cross-install`: install wheels for a foreign platform on the build platform
    /// instead of under emulation (default true).
    pub cross_install: Option<Sp<bool>>,
    /// `stack.resolve`: pip steps for the build platform are resolved into a lock in the build
    /// and installed as lock groups, like a foreign platform's (default false).
    pub resolve: Option<Sp<bool>>,
    /// `stack.requires`: the frontend versions this stack is written for, a semver requirement
    /// such as `">=0.2"` (checked by [`crate::version::check_requires`]).
    pub requires: Option<Sp<String>>,
    /// Image name → index in `images`, built on the first lookup ([`Stack::image`]).
    pub(crate) name_index: std::sync::OnceLock<std::collections::HashMap<String, usize>>,
    /// The stack-wide checks' findings, computed once (`plan::check_stack`): every plan of
    /// every target needs them.
    pub(crate) checked: std::sync::OnceLock<crate::diag::Diagnostics>,
}

impl Stack {
    pub fn variant(&self, name: &str) -> Option<&VariantDef> {
        self.variants.iter().find(|v| v.name.value == name)
    }

    /// The variant used when the target names none: the one marked `default`, else the first.
    pub fn default_variant(&self) -> Option<&VariantDef> {
        self.variants
            .iter()
            .find(|v| v.default.as_ref().is_some_and(|d| d.value))
            .or(self.variants.first())
    }

    /// The stack as a variant sees it: each overlay merged into its layer or service.
    pub fn with_variant(&self, variant: &VariantDef) -> Stack {
        let mut out = self.clone();
        // The overlays change the images: the checks run again on the variant's stack.
        out.checked = std::sync::OnceLock::new();
        for img in &mut out.images {
            img.env.extend(variant.env.iter().cloned());
        }
        for overlay in &variant.images {
            if let Some(img) = out
                .images
                .iter_mut()
                .find(|i| i.name.value == overlay.name.value)
            {
                img.merge(overlay);
            }
        }
        out
    }

    /// The stack as a plan for `platform` sees it: each image's overlay for that platform
    /// (`[layers.X.platforms."linux/arm64"]`) merged into it. None when no image has one.
    pub fn with_platform(&self, platform: &crate::platform::Platform) -> Option<Stack> {
        let applies = |i: &ImageDef| i.platforms.iter().any(|o| &o.platform == platform);
        if !self.images.iter().any(applies) {
            return None;
        }
        let mut out = self.clone();
        out.checked = std::sync::OnceLock::new();
        for img in &mut out.images {
            let overlays: Vec<PlatformOverlay> = img
                .platforms
                .iter()
                .filter(|o| &o.platform == platform)
                .cloned()
                .collect();
            for o in overlays {
                img.merge(&o.image);
                img.platform_overlay = Some(o.key.clone());
            }
        }
        Some(out)
    }

    /// The layer or service `name`: a hash lookup (planning looks names up for every `from`
    /// of every target), falling back to a scan if `images` changed since the index was built.
    pub fn image(&self, name: &str) -> Option<&ImageDef> {
        let index = self.name_index.get_or_init(|| {
            let mut m = std::collections::HashMap::with_capacity(self.images.len());
            for (i, img) in self.images.iter().enumerate() {
                // The first of two images with one name wins, as the scan did.
                m.entry(img.name.value.clone()).or_insert(i);
            }
            m
        });
        // Names are unique (the parser rejects a second one): the index covers every image
        // unless images were added or removed since it was built.
        if index.len() == self.images.len() {
            match index.get(name).and_then(|&i| self.images.get(i)) {
                Some(img) if img.name.value == name => return Some(img),
                None => return None,
                Some(_) => {}
            }
        }
        self.images.iter().find(|i| i.name.value == name)
    }

    pub fn layers(&self) -> impl Iterator<Item = &ImageDef> {
        self.images.iter().filter(|i| i.kind == Kind::Layer)
    }

    pub fn services(&self) -> impl Iterator<Item = &ImageDef> {
        self.images.iter().filter(|i| i.kind == Kind::Service)
    }

    /// The target used without `--target`: `stack.default`, else the first service, else the
    /// last layer, leaving out `build-only` images (unless every image is one).
    pub fn default_target(&self) -> Option<&str> {
        if let Some(d) = &self.default_target {
            return Some(&d.value);
        }
        let shipped = |i: &&ImageDef| !i.is_build_only();
        self.services()
            .find(shipped)
            .or_else(|| self.layers().filter(shipped).last())
            .or_else(|| self.services().next())
            .or_else(|| self.layers().last())
            .map(|i| i.name.value.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct ArgDef {
    pub name: Sp<String>,
    pub default: Option<Sp<String>>,
    pub description: Option<Sp<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVar {
    pub name: Sp<String>,
    pub value: Sp<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A base image shared by services (`[layers.NAME]`).
    Layer,
    /// An image people deploy (`[services.NAME]`).
    Service,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Layer => "layer",
            Kind::Service => "service",
        }
    }

    pub fn table(self) -> &'static str {
        match self {
            Kind::Layer => "layers",
            Kind::Service => "services",
        }
    }
}

/// One layer or service. Inside it the steps run in a fixed order: apt, user, workdir, run,
/// Python deps (requirements, then pip), copy.
#[derive(Clone, Debug)]
pub struct ImageDef {
    pub kind: Kind,
    pub name: Sp<String>,
    /// The span of the table header (`[layers.ml]`).
    pub span: Span,
    pub description: Option<Sp<String>>,
    /// A layer name or an image reference.
    pub from: Option<Sp<String>>,
    /// Package names, and `./path.deb` files from the context.
    pub apt: Vec<Sp<String>>,
    /// Install recommended packages too (default false: `--no-install-recommends`).
    pub apt_recommends: Option<Sp<bool>>,
    /// Extra apt repositories (deb822 sources), written before `apt-get update`.
    pub apt_sources: Vec<AptSourceDef>,
    pub user: Option<UserDef>,
    pub workdir: Option<Sp<String>>,
    pub run: Vec<RunDef>,
    pub requirements: Vec<Sp<String>>,
    pub pip: Vec<Sp<String>>,
    pub index_url: Option<Sp<String>>,
    pub extra_index_urls: Vec<Sp<String>>,
    pub install_env: Vec<EnvVar>,
    pub env: Vec<EnvVar>,
    pub copy: Vec<CopyDef>,
    pub cmd: Option<Sp<Command>>,
    pub entrypoint: Option<Sp<Command>>,
    pub expose: Vec<Sp<String>>,
    pub healthcheck: Option<HealthcheckDef>,
    pub labels: Vec<EnvVar>,
    pub stop_signal: Option<Sp<String>>,
    pub venv: Option<VenvDef>,
    /// `torch = true` (the whole `[torch]` package set) or a list of its package names.
    pub torch: Option<Sp<TorchUse>>,
    /// Overrides `[stack] installer` for this image.
    pub installer: Option<Sp<String>>,
    /// A conda environment file installed with micromamba (or another installer).
    pub conda: Option<CondaDef>,
    /// `lock = "uv.lock"` / `lock = { file, groups, extras, python-version }`: Python packages
    /// installed from a lock file, one layer per package group.
    pub lock: Option<LockDef>,
    /// Overrides `[stack] cross-install` for this image's pip steps.
    pub cross_install: Option<Sp<bool>>,
    /// Overrides `[stack] resolve` for this image's pip steps.
    pub resolve: Option<Sp<bool>>,
    /// `build-only = true`: an image only built to copy artifacts from (or to build on),
    /// never shipped: no bake target, never the default target.
    pub build_only: Option<Sp<bool>>,
    /// `dockerfile = …`: the image is built from a Dockerfile by BuildKit's Dockerfile
    /// frontend instead of from the keys above (which it cannot be combined with).
    pub dockerfile: Option<DockerfileDef>,
    /// The interpreter of this image's pip steps (overrides `[stack] python`; inherited by
    /// the images built on this one).
    pub python: Option<Sp<String>>,
    /// The PyTorch backend of this image's torch step (`cpu`, `cuda`, `cu121`, …): overrides
    /// the variant's `torch`; inherited by the images built on this one.
    pub torch_backend: Option<Sp<String>>,
    /// Tag templates of this image for `llb-gen bake` (replace `[stack] tags`; `[]` = none).
    pub tags: Option<Vec<Sp<String>>>,
    /// `[layers.X.platforms."linux/arm64"]`: overlays merged in when planning that platform.
    pub platforms: Vec<PlatformOverlay>,
    /// The key path of the platform overlay merged into this image (set by
    /// [`Stack::with_platform`]), if any.
    pub platform_overlay: Option<String>,
}

/// `dockerfile = "services/auth/Dockerfile"` or `{ file, context, target, args }`: an image
/// built by BuildKit's Dockerfile frontend in the same graph.
#[derive(Clone, Debug)]
pub struct DockerfileDef {
    /// The Dockerfile, a path in the build context.
    pub file: Sp<String>,
    /// The directory of the build context the Dockerfile builds with (default: the
    /// Dockerfile's directory).
    pub context: Option<Sp<String>>,
    /// The stage to build (default: the last).
    pub target: Option<Sp<String>>,
    /// `--build-arg`s, values interpolated with the stack args.
    pub args: Vec<EnvVar>,
    pub span: Span,
}

/// `[services.api.platforms."linux/arm64"]`: a partial layer or service (the keys of an
/// image, none required) merged into the image when a plan is for that platform.
#[derive(Clone, Debug)]
pub struct PlatformOverlay {
    /// The platform as written (`"linux/arm64"`, `"arm64"`), with its span.
    pub written: Sp<String>,
    /// The normalised platform.
    pub platform: crate::platform::Platform,
    /// `services.api.platforms."linux/arm64"`: the overlay's key path.
    pub key: String,
    pub image: ImageDef,
}

impl ImageDef {
    pub fn new(kind: Kind, name: Sp<String>, span: Span) -> ImageDef {
        ImageDef {
            kind,
            name,
            span,
            description: None,
            from: None,
            apt: vec![],
            apt_recommends: None,
            apt_sources: vec![],
            user: None,
            workdir: None,
            run: vec![],
            requirements: vec![],
            pip: vec![],
            index_url: None,
            extra_index_urls: vec![],
            install_env: vec![],
            env: vec![],
            copy: vec![],
            cmd: None,
            entrypoint: None,
            expose: vec![],
            healthcheck: None,
            labels: vec![],
            stop_signal: None,
            venv: None,
            torch: None,
            installer: None,
            conda: None,
            lock: None,
            cross_install: None,
            resolve: None,
            build_only: None,
            dockerfile: None,
            python: None,
            torch_backend: None,
            tags: None,
            platforms: vec![],
            platform_overlay: None,
        }
    }

    /// Apply a variant's overlay: scalars it sets replace ours, lists and tables extend ours.
    pub fn merge(&mut self, o: &ImageDef) {
        fn replace<T: Clone>(a: &mut Option<T>, b: &Option<T>) {
            if b.is_some() {
                a.clone_from(b);
            }
        }
        replace(&mut self.description, &o.description);
        replace(&mut self.from, &o.from);
        replace(&mut self.user, &o.user);
        replace(&mut self.workdir, &o.workdir);
        replace(&mut self.index_url, &o.index_url);
        replace(&mut self.cmd, &o.cmd);
        replace(&mut self.entrypoint, &o.entrypoint);
        replace(&mut self.healthcheck, &o.healthcheck);
        replace(&mut self.stop_signal, &o.stop_signal);
        replace(&mut self.venv, &o.venv);
        replace(&mut self.torch, &o.torch);
        replace(&mut self.installer, &o.installer);
        replace(&mut self.conda, &o.conda);
        replace(&mut self.lock, &o.lock);
        replace(&mut self.cross_install, &o.cross_install);
        replace(&mut self.resolve, &o.resolve);
        replace(&mut self.apt_recommends, &o.apt_recommends);
        replace(&mut self.build_only, &o.build_only);
        replace(&mut self.dockerfile, &o.dockerfile);
        replace(&mut self.python, &o.python);
        replace(&mut self.torch_backend, &o.torch_backend);
        replace(&mut self.tags, &o.tags);
        self.platforms.extend(o.platforms.iter().cloned());
        self.apt.extend(o.apt.iter().cloned());
        self.apt_sources.extend(o.apt_sources.iter().cloned());
        self.run.extend(o.run.iter().cloned());
        self.requirements.extend(o.requirements.iter().cloned());
        self.pip.extend(o.pip.iter().cloned());
        self.extra_index_urls
            .extend(o.extra_index_urls.iter().cloned());
        self.install_env.extend(o.install_env.iter().cloned());
        self.env.extend(o.env.iter().cloned());
        self.copy.extend(o.copy.iter().cloned());
        self.expose.extend(o.expose.iter().cloned());
        self.labels.extend(o.labels.iter().cloned());
    }

    /// Marked `build-only = true`: never shipped (no bake target, not the default target).
    pub fn is_build_only(&self) -> bool {
        self.build_only.as_ref().is_some_and(|b| b.value)
    }

    /// `layers.ml` / `services.api`: the key path of the table.
    pub fn key(&self) -> String {
        format!("{}.{}", self.kind.table(), self.name.value)
    }
}

/// One `apt-sources` entry: a deb822 source
/// (`{ uris = "https://…", suites = "stable", components = "main", key = "keys/x.asc" }`).
#[derive(Clone, Debug)]
pub struct AptSourceDef {
    /// The file name under /etc/apt/sources.list.d (`layerstack-NAME.sources`).
    pub name: Option<Sp<String>>,
    /// `deb` (default) and/or `deb-src`.
    pub types: Vec<Sp<String>>,
    pub uris: Vec<Sp<String>>,
    pub suites: Vec<Sp<String>>,
    pub components: Vec<Sp<String>>,
    pub architectures: Vec<Sp<String>>,
    /// The signing key: a file in the build context (armored `.asc` or binary `.gpg`).
    pub key: Option<Sp<String>>,
    /// The signing key: a keyring path in the image, or an inline armored key.
    pub signed_by: Option<Sp<String>>,
    pub span: Span,
}

/// One `run` entry: a shell command, optionally with context paths it reads
/// (`{ cmd = "make -C native/lib install", context = ["native/lib"] }`).
#[derive(Clone, Debug)]
pub struct RunDef {
    pub cmd: Sp<String>,
    /// Context paths mounted (writable, thrown away) at the step's working directory.
    pub context: Vec<Sp<String>>,
    /// Where the command runs among the image's steps (`at = "before-apt"`, …); None = the
    /// default place, after apt, user and workdir.
    pub at: Option<Sp<String>>,
    pub span: Span,
}

/// `cmd`/`entrypoint`: exec form (array) or shell form (string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Clone, Debug)]
pub struct UserDef {
    pub name: Sp<String>,
    pub uid: Option<Sp<u32>>,
    pub gid: Option<Sp<u32>>,
    pub home: Option<Sp<String>>,
    pub shell: Option<Sp<String>>,
    /// Create the user (default: yes, unless it is root or numeric).
    pub create: Option<Sp<bool>>,
    pub span: Span,
}

/// Who owns copied files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chown {
    /// The image's user (own or inherited), if it is not root.
    Default,
    /// Keep root.
    No,
    /// `user[:group]`.
    To(Sp<String>),
}

#[derive(Clone, Debug)]
pub struct CopyDef {
    /// `from = "NAME"`: copy out of that layer or service (its final state, built for the
    /// same platform) instead of the build context; `src` is then an absolute path there.
    pub from: Option<Sp<String>>,
    /// `context = "NAME"`: `src` is a path in the named build context NAME
    /// (`--build-context NAME=DIR`) instead of the main one.
    pub context: Option<Sp<String>>,
    pub src: Sp<String>,
    /// Absolute, or relative to the workdir. Default: the source path under the workdir.
    pub dest: Option<Sp<String>>,
    pub chown: Chown,
    pub mode: Option<Sp<String>>,
    pub exclude: Vec<Sp<String>>,
    /// Where the copy happens (`at = "before-python"`); None = the default, after Python deps.
    pub at: Option<Sp<String>>,
    /// Copy nothing, instead of failing, when `src` matches nothing.
    pub optional: Option<Sp<bool>>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct HealthcheckDef {
    /// None = disable an inherited healthcheck (`healthcheck = "none"`).
    pub test: Option<Sp<Command>>,
    pub interval: Option<Sp<String>>,
    pub timeout: Option<Sp<String>>,
    pub start_period: Option<Sp<String>>,
    pub retries: Option<Sp<u32>>,
    pub span: Span,
}

/// A two-stage service: Python deps go into a venv built in a builder image; only the venv and
/// the code reach the runtime image.
#[derive(Clone, Debug)]
pub struct VenvDef {
    pub path: Option<Sp<String>>,
    /// A layer name or image reference for the builder (default: the service's `from`).
    pub builder: Option<Sp<String>>,
    /// apt packages for the builder only (compilers, headers).
    pub builder_apt: Vec<Sp<String>>,
    pub span: Span,
}

/// Which packages of `[torch]` an image installs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TorchUse {
    All,
    Only(Vec<String>),
}

/// `[torch]`: a package set with per-backend builds (torch, torchvision, torchaudio, …).
#[derive(Clone, Debug)]
pub struct TorchDef {
    /// (package, version without a local part), in file order.
    pub packages: Vec<(Sp<String>, Sp<String>)>,
    /// The CUDA flavour of `torch = "cuda"` variants (default `cu118`).
    pub cuda: Option<Sp<String>>,
    /// Index of the CPU builds (`+cpu`, amd64 only).
    pub index_cpu: Option<Sp<String>>,
    /// Index of the CUDA builds; `{cuda}` is replaced by the flavour.
    pub index_cuda: Option<Sp<String>>,
    /// Index of the regular builds (arm64 CPU); None = the image's own index (PyPI).
    pub index_default: Option<Sp<String>>,
    pub span: Span,
}

/// `[variants.NAME]`: a flavour of every image (cpu, cuda): its platforms, torch backend, env
/// and per-image overlays (`[variants.cuda.layers.system] from = "nvidia/cuda:…"`).
#[derive(Clone, Debug)]
pub struct VariantDef {
    pub name: Sp<String>,
    pub description: Option<Sp<String>>,
    pub platforms: Vec<Sp<String>>,
    /// `cpu`, `cuda` (the `[torch] cuda` flavour) or a flavour like `cu121`.
    pub torch: Option<Sp<String>>,
    /// Env added to every image of the variant.
    pub env: Vec<EnvVar>,
    pub default: Option<Sp<bool>>,
    /// Overlays: partial layer/service definitions merged into the stack's.
    pub images: Vec<ImageDef>,
    pub span: Span,
}

/// `[secrets.NAME]`: a secret every install step can read, never written to a layer, the
/// image config or the LLB (only its id is).
#[derive(Clone, Debug)]
pub struct SecretDef {
    pub name: Sp<String>,
    /// Expose as this env var (`PIP_INDEX_URL` with credentials).
    pub env: Option<Sp<String>>,
    /// Mount as a file here (default `/run/secrets/NAME` when `env` is not set).
    pub target: Option<Sp<String>>,
    /// Fail when the build does not pass it (default true).
    pub required: Option<Sp<bool>>,
    pub span: Span,
}

/// `lock = "uv.lock"` or `lock = { file = "pylock.toml", groups = [...], extras = [...] }`:
/// the packages a lock file selects for the target, installed from checksummed wheels.
#[derive(Clone, Debug)]
pub struct LockDef {
    /// The lock file in the build context (`uv.lock`, `pylock.toml`, `pylock.NAME.toml`).
    pub file: Sp<String>,
    /// Dependency groups (uv `dev-dependencies`, pylock `dependency-groups`).
    pub groups: Vec<Sp<String>>,
    /// Extras of the project.
    pub extras: Vec<Sp<String>>,
    /// The image's CPython version (`3.12`); default: read from a `python:X.Y…` base image tag.
    pub python_version: Option<Sp<String>>,
    /// `auth-secret = "NAME"`: the `[secrets.NAME]` whose value is the `Authorization` header
    /// of every wheel download (a private index).
    pub auth_secret: Option<Sp<String>>,
    /// `member = "api"`: of a uv workspace lock, install this member's dependencies only
    /// (default: every member's).
    pub member: Option<Sp<String>>,
    pub span: Span,
}

/// `conda = { file = "packages.yaml", … }`: a conda environment installed into the image.
#[derive(Clone, Debug)]
pub struct CondaDef {
    /// The environment file in the build context.
    pub file: Sp<String>,
    pub channels: Vec<Sp<String>>,
    /// `micromamba` (default), `mamba` or `conda`.
    pub installer: Option<Sp<String>>,
    /// The package cache (default `/opt/conda/pkgs`): a cache mount.
    pub cache: Option<Sp<String>>,
    /// The environment (default `base`).
    pub env: Option<Sp<String>>,
    pub span: Span,
}
