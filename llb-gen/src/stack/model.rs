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
}

impl Stack {
    pub fn image(&self, name: &str) -> Option<&ImageDef> {
        self.images.iter().find(|i| i.name.value == name)
    }

    pub fn layers(&self) -> impl Iterator<Item = &ImageDef> {
        self.images.iter().filter(|i| i.kind == Kind::Layer)
    }

    pub fn services(&self) -> impl Iterator<Item = &ImageDef> {
        self.images.iter().filter(|i| i.kind == Kind::Service)
    }

    /// The target used without `--target`: `stack.default`, else the first service, else the
    /// last layer.
    pub fn default_target(&self) -> Option<&str> {
        if let Some(d) = &self.default_target {
            return Some(&d.value);
        }
        self.services()
            .next()
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
    pub apt: Vec<Sp<String>>,
    pub user: Option<UserDef>,
    pub workdir: Option<Sp<String>>,
    pub run: Vec<Sp<String>>,
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
        }
    }

    /// `layers.ml` / `services.api`: the key path of the table.
    pub fn key(&self) -> String {
        format!("{}.{}", self.kind.table(), self.name.value)
    }
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
    pub src: Sp<String>,
    /// Absolute, or relative to the workdir. Default: the source path under the workdir.
    pub dest: Option<Sp<String>>,
    pub chown: Chown,
    pub mode: Option<Sp<String>>,
    pub exclude: Vec<Sp<String>>,
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
