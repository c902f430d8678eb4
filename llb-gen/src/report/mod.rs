//! Reports about a whole stack, for people and for other tools: the layer tree
//! (`llb-gen plan`), the image graph (`llb-gen graph`), content hashes (`llb-gen hash`) and a
//! buildx bake file (`llb-gen bake`).
//!
//! Pure like the rest of the library: every function takes the stack, build options and — for
//! hashes — the build context through the [`Context`] trait, and returns strings or structs.
//! The CLI (`main.rs`) is the only place that reads files.

pub mod bake;
pub mod context;
pub mod graph;
pub mod hash;
pub mod plan_text;
pub mod targets;
pub mod tree;

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::plan::{self, BuildOptions, PlanImage};
use crate::platform::Platform;
use crate::stack::Stack;

pub use context::{Context, Entry, Ignore, MemContext};
pub use hash::ImageHash;

/// Why a report could not be made: the stack has errors, or the build context could not be
/// read as the stack needs it.
#[derive(Clone, Debug)]
pub enum Error {
    Stack(Diagnostics),
    Context(String),
}

impl From<Diagnostics> for Error {
    fn from(d: Diagnostics) -> Error {
        Error::Stack(d)
    }
}

/// Every image of a stack, each planned as its own target with the same options.
#[derive(Clone, Debug)]
pub struct Planned {
    /// In stack file order. Layer bases refer to other entries by name.
    pub images: Vec<PlanImage>,
    /// Warnings of all the plans, without duplicates.
    pub warnings: Diagnostics,
}

impl Planned {
    pub fn image(&self, name: &str) -> Option<&PlanImage> {
        self.images.iter().find(|i| i.name == name)
    }
}

/// Plan every layer and service of the stack (`opts.target` is ignored). All errors of all
/// images are returned together.
pub fn plan_all(stack: &Stack, opts: &BuildOptions) -> Result<Planned, Diagnostics> {
    let mut errors = Diagnostics::default();
    let mut warnings = Diagnostics::default();
    let mut images = vec![];
    if stack.images.is_empty() {
        return Err(plan::check_stack(stack).sorted());
    }
    // One plan of every image (each planned once), in the default variant.
    let o = BuildOptions {
        target: None,
        ..opts.clone()
    };
    match plan::plan_every(stack, &o) {
        Ok(mut p) => {
            warnings.extend(std::mem::take(&mut p.warnings));
            // In stack file order.
            let mut by_name: std::collections::HashMap<String, PlanImage> =
                p.images.into_iter().map(|i| (i.name.clone(), i)).collect();
            images.extend(
                stack
                    .images
                    .iter()
                    .filter_map(|i| by_name.remove(&i.name.value)),
            );
        }
        Err(d) => errors.extend(d),
    }
    if errors.has_errors() {
        errors.extend(warnings);
        return Err(errors.sorted());
    }
    Ok(Planned {
        images,
        warnings: warnings.sorted(),
    })
}

/// The images one target needs, in build order (the target last), as [`Planned`].
pub fn plan_target(stack: &Stack, opts: &BuildOptions) -> Result<Planned, Diagnostics> {
    let p = plan::plan(stack, opts)?;
    Ok(Planned {
        images: p.images,
        warnings: p.warnings,
    })
}

/// The platforms a stack is built for when the request names none: `stack.platforms`, else
/// `linux/amd64`. `requested` (from `--platform`) wins when it is not empty.
pub fn platforms(stack: &Stack, requested: &[String]) -> Result<Vec<Platform>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut out: Vec<Platform> = vec![];
    let from_stack: Vec<(String, Option<crate::source::Span>)> = stack
        .platforms
        .iter()
        .map(|p| (p.value.clone(), Some(p.span)))
        .collect();
    let list: Vec<(String, Option<crate::source::Span>)> = if requested.is_empty() {
        from_stack
    } else {
        requested
            .iter()
            .flat_map(|r| r.split(','))
            .map(|s| (s.trim().to_string(), None))
            .filter(|(s, _)| !s.is_empty())
            .collect()
    };
    for (s, span) in list {
        match Platform::parse(&s) {
            Ok(p) => {
                if !out.contains(&p) {
                    out.push(p)
                }
            }
            Err(e) => {
                let mut d = Diagnostic::error(e);
                d = match span {
                    Some(sp) => d.at(sp).key("stack.platforms"),
                    None => d.key("--platform"),
                };
                diags.push(d);
            }
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    if out.is_empty() {
        out.push(Platform::linux_amd64());
    }
    Ok(out)
}

/// The content hash of layer or service `name` for `platforms` (see [`hash`]): plans the
/// image for each platform, then reads what it needs through `ctx`. `ignore`: the context's
/// `.dockerignore` patterns.
pub fn hash_image(
    stack: &Stack,
    opts: &BuildOptions,
    platforms: &[Platform],
    name: &str,
    ctx: &dyn Context,
    ignore: &Ignore,
) -> Result<ImageHash, Error> {
    hash_image_with(
        stack,
        opts,
        platforms,
        name,
        ctx,
        ignore,
        &NamedContexts::new(),
    )
}

/// Named directory contexts (`--build-context NAME=DIR`) as hashes read them: NAME → the
/// context and its own `.dockerignore`.
pub type NamedContexts<'a> = BTreeMap<String, (&'a dyn Context, &'a Ignore)>;

/// [`hash_image`] for a stack that also reads named contexts.
pub fn hash_image_with(
    stack: &Stack,
    opts: &BuildOptions,
    platforms: &[Platform],
    name: &str,
    ctx: &dyn Context,
    ignore: &Ignore,
    named: &NamedContexts<'_>,
) -> Result<ImageHash, Error> {
    let mut plans = vec![];
    for p in platforms {
        let o = BuildOptions {
            target: Some(name.to_string()),
            platform: p.clone(),
            ..opts.clone()
        };
        plans.push((p.clone(), plan::plan(stack, &o)?.images));
    }
    let mut h = hash::Hasher::new(&plans, ctx, ignore);
    for (n, (c, i)) in named {
        h = h.with_named(n, *c, i);
    }
    h.hash(name).map_err(Error::Context)
}

/// The `docker-bake.json` of the stack (see [`bake`]). Hashes are computed (and the context
/// read) only when a tag template uses `${HASH}`.
pub fn bake_file(
    stack: &Stack,
    opts: &BuildOptions,
    platforms: &[Platform],
    options: &bake::BakeOptions,
    ctx: &dyn Context,
    ignore: &Ignore,
) -> Result<String, Error> {
    bake_file_with(
        stack,
        opts,
        platforms,
        options,
        ctx,
        ignore,
        &NamedContexts::new(),
    )
}

/// [`bake_file`] for a stack that also reads named contexts (`${HASH}` reads them).
pub fn bake_file_with(
    stack: &Stack,
    opts: &BuildOptions,
    platforms: &[Platform],
    options: &bake::BakeOptions,
    ctx: &dyn Context,
    ignore: &Ignore,
    named: &NamedContexts<'_>,
) -> Result<String, Error> {
    let mut plans = vec![];
    for p in platforms {
        let o = BuildOptions {
            platform: p.clone(),
            ..opts.clone()
        };
        plans.push((p.clone(), plan_all(stack, &o)?.images));
    }
    let mut hashes = BTreeMap::new();
    if bake::uses_hash(stack) {
        let mut h = hash::Hasher::new(&plans, ctx, ignore);
        for (n, (c, i)) in named {
            h = h.with_named(n, *c, i);
        }
        for img in &stack.images {
            let d = h.hash(&img.name.value).map_err(Error::Context)?;
            hashes.insert(img.name.value.clone(), d.short().to_string());
        }
    }
    let first = BuildOptions {
        platform: platforms
            .first()
            .cloned()
            .unwrap_or_else(Platform::linux_amd64),
        ..opts.clone()
    };
    let images = &plans.first().map(|(_, i)| i.as_slice()).unwrap_or(&[]);
    Ok(bake::render(stack, images, &first, options, &hashes)?)
}

/// `docker.io/library/python:3.12-slim` → `python:3.12-slim`: how people write references.
pub fn short_ref(reference: &str) -> &str {
    reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference)
}

#[cfg(test)]
pub(crate) mod testutil {
    use crate::plan::BuildOptions;
    use crate::source::SourceFile;
    use crate::stack::{Stack, parse};

    /// The shape of `examples/multi-service`, inline so unit tests do not read files.
    pub const MULTI: &str = r#"# syntax=layerstack:dev
[stack]
name = "multi-service"
default = "api"

[args]
PYTHON_VERSION = "3.12"
APP_VERSION = { default = "dev" }

[stack.install-env]
PIP_NO_COMPILE = "0"

[layers.system]
description = "OS packages and the user"
from = "python:${PYTHON_VERSION}-slim"
apt = ["curl", "ca-certificates"]
user = { name = "appuser", uid = 1000 }
workdir = "/app"
env = { PYTHONUNBUFFERED = "1" }

[layers.runtime]
from = "system"
requirements = ["libs/requirements-base.txt"]
copy = ["libs/common"]

[services.api]
description = "HTTP API"
from = "runtime"
pip = ["humanize==4.11.0"]
copy = ["apps/api"]
cmd = ["python3", "-m", "apps.api"]
expose = [8000]
labels = { "org.opencontainers.image.version" = "${APP_VERSION}" }

[services.worker]
from = "runtime"
apt = ["jq"]
requirements = ["apps/worker/requirements.txt"]
copy = ["apps/worker"]
labels = { "org.opencontainers.image.version" = "${APP_VERSION}" }

[services.ingest]
from = "python:${PYTHON_VERSION}-slim"
requirements = ["libs/requirements-base.txt", "apps/ingest/requirements.txt"]
venv = { path = "/opt/venv" }
user = "appuser"
workdir = "/srv"
copy = ["libs/common", "apps/ingest"]
cmd = ["python", "-m", "apps.ingest"]
"#;

    pub fn stack(text: &str) -> Stack {
        let (stack, d) = parse(&SourceFile::new("stack.toml", text));
        assert!(!d.has_errors(), "{d:?}");
        stack
    }

    pub fn opts() -> BuildOptions {
        BuildOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn plans_every_image_in_file_order() {
        let s = stack(MULTI);
        let p = plan_all(&s, &opts()).unwrap();
        let names: Vec<&str> = p.images.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["system", "runtime", "api", "worker", "ingest"]);
    }

    #[test]
    fn errors_of_all_images_come_together_once() {
        let s = stack(
            "[layers.a]\nfrom = \"python:${NOPE}\"\n[services.b]\nfrom = \"a\"\n[services.c]\nfrom = \"a\"\n",
        );
        let e = plan_all(&s, &opts()).unwrap_err();
        assert_eq!(e.error_count(), 1, "{:?}", e.items);
    }

    #[test]
    fn platform_lists() {
        let s = stack(
            "[stack]\nplatforms = [\"linux/arm64\", \"linux/amd64\"]\n[services.a]\nfrom = \"x\"\n",
        );
        let p = platforms(&s, &[]).unwrap();
        assert_eq!(p.len(), 2);
        let p = platforms(&s, &["linux/amd64,linux/amd64".into()]).unwrap();
        assert_eq!(p, [Platform::linux_amd64()]);
        assert!(platforms(&s, &["Linux".into()]).is_err());
        let s = stack("[services.a]\nfrom = \"x\"\n");
        assert_eq!(platforms(&s, &[]).unwrap(), [Platform::linux_amd64()]);
        assert_eq!(short_ref("docker.io/library/python:3"), "python:3");
        assert_eq!(short_ref("docker.io/me/x:1"), "me/x:1");
        assert_eq!(short_ref("ghcr.io/a/b:1"), "ghcr.io/a/b:1");
    }
}
