//! The resources a plan uses, as data with spans: the context paths its steps read, the cache
//! mounts its install steps get (ids namespaced by platform and variant) and its secrets. The
//! converter renders them; the frontend's context check and `outline` read them from here.

use crate::platform::Platform;
use crate::source::Span;

use super::{Base, Installer, PipStep, Plan, PlanImage, StepKind};

/// How a cache mount is shared between concurrent builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Locked,
}

/// A cache a step mounts: apt's archives and lists, pip's, uv's and conda's package caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheKind {
    AptArchives,
    AptLists,
    Pip,
    Uv,
    Conda,
}

/// One cache mount: its id (`layerstack-pip-linux-amd64-cuda`), where it is mounted, how it
/// is shared, and the step (key, span) that first uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheUse {
    pub id: String,
    pub dest: String,
    pub sharing: Sharing,
    pub key: String,
    pub span: Span,
}

/// Where pip's and uv's caches are mounted (and the env vars that point the tools at them).
pub const PIP_CACHE_DIR: &str = "/root/.cache/pip";
pub const UV_CACHE_DIR: &str = "/root/.cache/uv";

/// The suffix of every cache id: the platform, and the variant when the stack has variants
/// (a CUDA variant's Ubuntu apt lists must not meet a Debian base's).
pub fn cache_slug(platform: &Platform, variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("{}-{v}", platform.slug()),
        None => platform.slug(),
    }
}

/// The cache mount of `kind` for `slug`: (id, dest, sharing). `conda_dir` is the conda step's
/// package directory (the other kinds have fixed ones). The one place cache ids are written.
pub fn cache_mount(kind: CacheKind, slug: &str, conda_dir: &str) -> (String, String, Sharing) {
    match kind {
        CacheKind::AptArchives => (
            format!("layerstack-apt-cache-{slug}"),
            "/var/cache/apt".into(),
            Sharing::Locked,
        ),
        CacheKind::AptLists => (
            format!("layerstack-apt-lib-{slug}"),
            "/var/lib/apt".into(),
            Sharing::Locked,
        ),
        CacheKind::Pip => (
            format!("layerstack-pip-{slug}"),
            PIP_CACHE_DIR.into(),
            Sharing::Shared,
        ),
        CacheKind::Uv => (
            format!("layerstack-uv-{slug}"),
            UV_CACHE_DIR.into(),
            Sharing::Shared,
        ),
        CacheKind::Conda => (
            format!("layerstack-conda-{slug}"),
            conda_dir.into(),
            Sharing::Locked,
        ),
    }
}

/// The caches a pip step mounts, in the order its execs use them: pip (installing uv first,
/// when uv installs) and the installer's own.
pub fn pip_caches(pip: &PipStep) -> &'static [CacheKind] {
    match pip.installer {
        Installer::Pip => &[CacheKind::Pip],
        Installer::Uv { .. } => &[CacheKind::Pip, CacheKind::Uv],
    }
}

/// The context paths one step reads, loaded by one context source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextRead {
    /// The named build context the paths are in (`--build-context NAME=DIR`); None for the
    /// main build context.
    pub context: Option<String>,
    /// The paths as the step names them, in their context (`.` for the whole context).
    pub paths: Vec<String>,
    /// The stack key that names them (`services.api.requirements`).
    pub key: String,
    pub span: Span,
    /// Patterns a copy leaves out (`exclude`); empty for the other steps.
    pub exclude: Vec<String>,
    /// The paths are file names (requirements, packages, environment files, run context):
    /// `[`, `*`, `?` in them are escaped in the include patterns. False for copy sources,
    /// which may be patterns.
    pub literal: bool,
    /// An optional copy (`optional = true`): its source may match nothing, so the context
    /// check leaves it out.
    pub optional: bool,
}

impl ContextRead {
    /// The context source's `local.includepattern` list: sorted, without duplicates, `.` as
    /// `**`.
    pub fn include_patterns(&self) -> Vec<String> {
        include_patterns(&self.paths, self.literal)
    }
}

/// `paths` as one context source includes them: sorted, deduplicated, `.` → `**`; with
/// `literal`, glob characters escaped.
pub fn include_patterns(paths: &[String], literal: bool) -> Vec<String> {
    let mut key = source_key(paths);
    for p in &mut key {
        if p == "." {
            *p = "**".into();
        } else if literal {
            *p = escape_pattern(p);
        }
    }
    key
}

/// `p` as a BuildKit include pattern that matches exactly the path `p`: `reqs[gpu].txt` as a
/// pattern matches `reqsg.txt` and not itself, so the file was never sent.
pub fn escape_pattern(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if matches!(c, '*' | '?' | '[' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The path an include pattern matches when it is a literal one (no unescaped `*`, `?` or
/// `[`), with its escapes removed; None for a real pattern.
pub fn literal_pattern(p: &str) -> Option<String> {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().unwrap_or('\\')),
            '*' | '?' | '[' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// A copy source that is a pattern only in its last component (`scripts/*.sh`), as the
/// directory to list and the pattern its entries must match (`("scripts", "*.sh")`; the
/// directory is `""` for the context's root). None for a literal path and for a pattern in a
/// directory component (`*/run.sh`), which a one-level listing cannot decide.
pub fn last_component_pattern(p: &str) -> Option<(String, String)> {
    if literal_pattern(p).is_some() {
        return None;
    }
    let (dir, last) = match p.trim_end_matches('/').rsplit_once('/') {
        Some((d, l)) => (d, l),
        None => ("", p.trim_end_matches('/')),
    };
    let dir = literal_pattern(dir)?;
    Some((dir, last.to_string()))
}

/// The key one context source is shared under: the paths sorted and deduplicated.
pub fn source_key(paths: &[String]) -> Vec<String> {
    let mut key = paths.to_vec();
    key.sort();
    key.dedup();
    key
}

impl Plan {
    /// The suffix of this plan's cache ids on `platform` (its own, or the build platform's
    /// for a cross-install's tool state).
    pub fn cache_slug(&self, platform: &Platform) -> String {
        cache_slug(platform, self.variant.as_deref())
    }

    /// Every cache mount the plan's steps use, in order of first use, each once.
    pub fn caches(&self) -> Vec<CacheUse> {
        let slug = self.cache_slug(&self.platform);
        let mut out: Vec<CacheUse> = vec![];
        let mut add = |kinds: &[CacheKind], conda_dir: &str, key: String, span: Span| {
            for &k in kinds {
                let (id, dest, sharing) = cache_mount(k, &slug, conda_dir);
                if !out.iter().any(|c| c.id == id) {
                    out.push(CacheUse {
                        id,
                        dest,
                        sharing,
                        key: key.clone(),
                        span,
                    });
                }
            }
        };
        const APT: &[CacheKind] = &[CacheKind::AptArchives, CacheKind::AptLists];
        for img in &self.images {
            for s in &img.steps {
                match &s.kind {
                    StepKind::Apt(_) => add(APT, "", format!("{}.apt", img.key), s.span),
                    StepKind::Pip(p) => add(pip_caches(p), "", pip_key(img, p), s.span),
                    StepKind::Conda(c) => add(
                        &[CacheKind::Conda],
                        &c.cache,
                        format!("{}.conda", img.key),
                        s.span,
                    ),
                    StepKind::CopyVenv { .. } => {
                        if let Some(v) = &img.venv {
                            if !v.apt.is_empty() {
                                add(APT, "", format!("{}.venv", img.key), v.span);
                            }
                            add(pip_caches(&v.pip), "", pip_key(img, &v.pip), v.pip_span);
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// The requirements files of every pip step (the venv builders' too), each once: what
    /// the edge reads to find their includes ([`super::includes`]).
    pub fn requirement_files(&self) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        for img in &self.images {
            let venv = img.venv.iter().map(|v| &v.pip);
            let steps = img.steps.iter().filter_map(|s| match &s.kind {
                StepKind::Pip(p) => Some(p),
                _ => None,
            });
            for p in steps.chain(venv) {
                for r in &p.requirements {
                    if !out.contains(r) {
                        out.push(r.clone());
                    }
                }
            }
        }
        out
    }

    /// Every group of context paths a step reads, image by image in plan order (see
    /// [`PlanImage::context_reads`]).
    pub fn context_reads(&self) -> Vec<ContextRead> {
        self.images
            .iter()
            .flat_map(PlanImage::context_reads)
            .collect()
    }
}

/// The key of a pip step: `requirements` when it installs from files, else `pip`.
fn pip_key(img: &PlanImage, p: &PipStep) -> String {
    if p.requirements.is_empty() {
        format!("{}.pip", img.key)
    } else {
        format!("{}.requirements", img.key)
    }
}

impl PlanImage {
    /// The groups of context paths this image's steps read, in step order: local `.deb`
    /// files and apt source keys, requirements
    /// files and local packages of pip steps (the venv builder's at its `copy venv` step),
    /// conda environment files, `run` context paths and copy sources.
    pub fn context_reads(&self) -> Vec<ContextRead> {
        let mut out = vec![];
        let read = |paths: Vec<String>, key: String, span: Span| ContextRead {
            context: None,
            paths,
            key,
            span,
            exclude: vec![],
            literal: true,
            optional: false,
        };
        let pip = |p: &PipStep, span: Span, out: &mut Vec<ContextRead>| {
            if !p.requirements.is_empty() {
                out.push(read(
                    p.requirements.iter().chain(&p.includes).cloned().collect(),
                    format!("{}.requirements", self.key),
                    span,
                ));
            }
            if !p.local.is_empty() {
                out.push(read(p.local.clone(), format!("{}.pip", self.key), span));
            }
        };
        if let Base::Dockerfile(d) = &self.base {
            // The Dockerfile frontend reads the Dockerfile and its context directory.
            out.push(read(
                vec![d.file.clone()],
                format!("{}.dockerfile.file", self.key),
                d.span,
            ));
            out.push(read(
                vec![d.context.clone()],
                format!("{}.dockerfile.context", self.key),
                d.span,
            ));
        }
        for s in &self.steps {
            match &s.kind {
                StepKind::Apt(a) => {
                    let files = a.context_files();
                    if !files.is_empty() {
                        out.push(read(files, format!("{}.apt", self.key), s.span));
                    }
                }
                StepKind::Pip(p) => pip(p, s.span, &mut out),
                StepKind::Conda(c) => out.push(read(
                    vec![c.file.clone()],
                    format!("{}.conda.file", self.key),
                    s.span,
                )),
                StepKind::Run { context, .. } if !context.is_empty() => {
                    out.push(read(context.clone(), format!("{}.run", self.key), s.span))
                }
                StepKind::Copy {
                    src,
                    exclude,
                    optional,
                    ..
                } => out.push(ContextRead {
                    exclude: exclude.clone(),
                    literal: false,
                    optional: *optional,
                    ..read(vec![src.clone()], format!("{}.copy", self.key), s.span)
                }),
                StepKind::CopyVenv { .. } => {
                    if let Some(v) = &self.venv {
                        pip(&v.pip, v.pip_span, &mut out);
                    }
                }
                _ => {}
            }
        }
        // One read per context: a step reading the main and a named context loads each.
        out.into_iter()
            .flat_map(|r| {
                super::ctxpath::group(&r.paths)
                    .into_iter()
                    .map(move |(context, paths)| ContextRead {
                        paths: paths
                            .iter()
                            .map(|p| super::ctxpath::split(p).1.to_string())
                            .collect(),
                        context,
                        ..r.clone()
                    })
            })
            .collect()
    }
}
