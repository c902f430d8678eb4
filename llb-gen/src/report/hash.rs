//! Content hashes of layers and services (`llb-gen hash`, `${HASH}` in tag templates).
//!
//! An image's hash covers everything that defines what gets built, and nothing else:
//! - its definition as planned — every step and every config change, after interpolation — and
//!   its install env (not its name, description or source positions);
//! - its base: the external image reference, or the parent layer's hash (recursively), and the
//!   same for a venv builder;
//! - the content of every context file it reads: requirements files and copy sources
//!   (directories walked in name order, honouring `.dockerignore` and `copy.exclude`), with
//!   each file's path, sha256 and executable bit, and symlink targets.
//!
//! So a service's code never changes the hash of the layer below it, an unused build arg
//! changes nothing, and editing a requirements file changes the hash of the layer that reads
//! it and of everything built on that layer. When a stack builds for several platforms, the
//! definitions of all of them go in (identical ones once: the hash of a stack that does not
//! depend on the platform is the same for any platform list).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::context::{Context, FileInput, Ignore, files_at};
use crate::plan::{
    AptStep, Base, ConfigChanges, Healthcheck, PipStep, PlanImage, Step, StepKind, UserPlan,
    VenvPlan,
};
use crate::platform::Platform;

/// Bumped when what goes into a hash changes, so old and new hashes never collide.
pub const HASH_VERSION: &str = "layerstack-hash/v1";

/// The hash of one layer or service and what went into it.
#[derive(Clone, Debug)]
pub struct ImageHash {
    pub name: String,
    /// 64 lowercase hex characters (sha256).
    pub digest: String,
    pub inputs: Vec<Input>,
}

impl ImageHash {
    /// The first 12 hex characters: short enough for a tag, long enough not to collide.
    pub fn short(&self) -> &str {
        &self.digest[..12]
    }

    /// `{layer, hash, digest, inputs}`; `hash` is the short form unless `full`.
    pub fn to_json(&self, full: bool) -> Value {
        json!({
            "layer": self.name,
            "hash": if full { self.digest.as_str() } else { self.short() },
            "digest": format!("sha256:{}", self.digest),
            "inputs": self.inputs.iter().map(Input::to_json).collect::<Vec<_>>(),
        })
    }
}

/// One thing that went into a hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The planned definition (one per distinct definition across platforms).
    Definition {
        platforms: Vec<String>,
        sha256: String,
        lines: Vec<String>,
    },
    /// A layer of the stack this image is built on (`from`) or whose venv it copies.
    Layer {
        role: &'static str,
        name: String,
        digest: String,
    },
    /// An external image this image is built on.
    Image {
        role: &'static str,
        reference: String,
    },
    File(FileInput),
}

impl Input {
    pub fn to_json(&self) -> Value {
        match self {
            Input::Definition {
                platforms,
                sha256,
                lines,
            } => json!({
                "type": "definition",
                "platforms": platforms,
                "sha256": sha256,
                "lines": lines,
            }),
            Input::Layer { role, name, digest } => json!({
                "type": "layer",
                "role": role,
                "name": name,
                "digest": format!("sha256:{digest}"),
            }),
            Input::Image { role, reference } => json!({
                "type": "image",
                "role": role,
                "reference": reference,
            }),
            Input::File(FileInput::File {
                path,
                sha256,
                executable,
            }) => json!({
                "type": "file",
                "path": path,
                "sha256": sha256,
                "executable": executable,
            }),
            Input::File(FileInput::Symlink { path, target }) => json!({
                "type": "symlink",
                "path": path,
                "target": target,
            }),
        }
    }
}

/// Computes and remembers hashes of the images of some plans.
pub struct Hasher<'a> {
    /// Per platform: the planned images by name.
    plans: Vec<(Platform, BTreeMap<String, &'a PlanImage>)>,
    ctx: &'a dyn Context,
    ignore: &'a Ignore,
    /// Named contexts (`--build-context NAME=DIR`): each read through its own `Context`
    /// with its own `.dockerignore`.
    named: BTreeMap<String, (&'a dyn Context, &'a Ignore)>,
    memo: BTreeMap<String, ImageHash>,
}

impl<'a> Hasher<'a> {
    /// `plans`: for each platform, images planned with the same options (layer bases are looked
    /// up by name, so every base of an image to hash must be there). `ignore`: the context's
    /// `.dockerignore`.
    pub fn new(
        plans: &'a [(Platform, Vec<PlanImage>)],
        ctx: &'a dyn Context,
        ignore: &'a Ignore,
    ) -> Hasher<'a> {
        Hasher {
            plans: plans
                .iter()
                .map(|(p, imgs)| {
                    (
                        p.clone(),
                        imgs.iter().map(|i| (i.name.clone(), i)).collect(),
                    )
                })
                .collect(),
            ctx,
            ignore,
            named: BTreeMap::new(),
            memo: BTreeMap::new(),
        }
    }

    /// Reads the named context `name` through `ctx`, with its own `.dockerignore`; its files
    /// are inputs as `NAME:PATH`.
    pub fn with_named(mut self, name: &str, ctx: &'a dyn Context, ignore: &'a Ignore) -> Self {
        self.named.insert(name.to_string(), (ctx, ignore));
        self
    }

    /// The hash of the layer or service `name`.
    pub fn hash(&mut self, name: &str) -> Result<ImageHash, String> {
        // Hash the layers `name` is built on first, deepest first: then `hash_inner` finds
        // each base in the memo, and a chain of thousands of layers needs no deep recursion.
        for base in self.bases_first(name) {
            self.hash_inner(&base, &mut vec![])?;
        }
        self.hash_inner(name, &mut vec![])
    }

    /// The layers under `name` (not `name` itself) not hashed yet, each after its own bases
    /// (an iterative post-order walk of every platform's plan).
    fn bases_first(&self, name: &str) -> Vec<String> {
        let mut order = vec![];
        let mut seen: BTreeSet<String> = BTreeSet::new();
        // (image, whether its bases were pushed already)
        let mut todo: Vec<(String, bool)> = vec![(name.to_string(), false)];
        while let Some((n, expanded)) = todo.pop() {
            if expanded {
                if n != name {
                    order.push(n);
                }
                continue;
            }
            if self.memo.contains_key(&n) || !seen.insert(n.clone()) {
                continue;
            }
            todo.push((n.clone(), true));
            let mut parents = vec![];
            for (_, imgs) in &self.plans {
                if let Some(img) = imgs.get(&n) {
                    for (_, b) in bases(img) {
                        if let Base::Layer { name: parent, .. } = b
                            && !parents.contains(parent)
                        {
                            parents.push(parent.clone());
                        }
                    }
                }
            }
            // Reversed, so that the first base is hashed first.
            todo.extend(parents.into_iter().rev().map(|p| (p, false)));
        }
        order
    }

    fn hash_inner(&mut self, name: &str, stack: &mut Vec<String>) -> Result<ImageHash, String> {
        if let Some(h) = self.memo.get(name) {
            return Ok(h.clone());
        }
        if stack.iter().any(|s| s == name) {
            return Err(format!("`from` cycle through `{name}`"));
        }
        stack.push(name.to_string());
        let per_platform: Vec<(Platform, &'a PlanImage)> = self
            .plans
            .iter()
            .map(|(p, imgs)| {
                imgs.get(name)
                    .map(|i| (p.clone(), *i))
                    .ok_or_else(|| format!("`{name}` is not a planned layer or service"))
            })
            .collect::<Result<_, _>>()?;
        if per_platform.is_empty() {
            return Err("no platform to hash for".into());
        }

        let mut parents: Vec<Input> = vec![];
        // Definitions: identical ones (across platforms) once, in first-platform order.
        let mut defs: Vec<(Vec<String>, Vec<String>)> = vec![];
        let mut files: BTreeSet<FileInput> = BTreeSet::new();
        for (platform, img) in &per_platform {
            let mut lines = vec![];
            for (role, base) in bases(img) {
                let line = match base {
                    // Its files (the Dockerfile, the context directory) are context reads.
                    Base::Dockerfile(d) => {
                        json!([role, "dockerfile", d.file, d.context, d.target, d.args])
                    }
                    // Named by the build, not by the stack: its name is all the stack says.
                    Base::Context { name, .. } => json!([role, "context", name]),
                    Base::Image { reference, .. } => {
                        push_unique(
                            &mut parents,
                            Input::Image {
                                role,
                                reference: reference.clone(),
                            },
                        );
                        json!([role, "image", reference])
                    }
                    Base::Layer { name: parent, .. } => {
                        let h = self.hash_inner(parent, stack)?;
                        push_unique(
                            &mut parents,
                            Input::Layer {
                                role,
                                name: parent.clone(),
                                digest: h.digest.clone(),
                            },
                        );
                        json!([role, "layer", h.digest])
                    }
                };
                lines.push(line.to_string());
            }
            lines.extend(definition_lines(img));
            match defs.iter_mut().find(|(l, _)| *l == lines) {
                Some((_, ps)) => ps.push(platform.id()),
                None => defs.push((lines, vec![platform.id()])),
            }
            for read in img.context_reads() {
                let exclude = Ignore::new(&read.exclude).map_err(|e| format!("`{name}`: {e}"))?;
                let (ctx, ignore) = match &read.context {
                    None => (self.ctx, self.ignore),
                    Some(c) => match self.named.get(c) {
                        Some(&(ctx, ignore)) => (ctx, ignore),
                        None => {
                            return Err(format!(
                                "{} `{name}` reads the named context `{c}`, which was not given (--build-context {c}=DIR)",
                                img.kind.as_str()
                            ));
                        }
                    },
                };
                for src in &read.paths {
                    let mut out = vec![];
                    match files_at(ctx, src, ignore, &exclude, &mut out) {
                        // A named context's files are inputs under their context's name.
                        Ok(()) => files.extend(out.into_iter().map(|f| match &read.context {
                            None => f,
                            Some(c) => f.in_context(c),
                        })),
                        // An optional copy that matches nothing copies nothing: no inputs.
                        Err(_) if read.optional => {}
                        Err(e) => {
                            return Err(format!("{} `{name}` reads {e}", img.kind.as_str()));
                        }
                    }
                }
            }
        }
        stack.pop();

        let mut inputs = vec![];
        let mut text = format!("{HASH_VERSION}\n");
        let mut def_digests: Vec<String> = vec![];
        for (lines, platforms) in defs {
            let body = lines.join("\n");
            let sha256 = super::context::sha256_hex(body.as_bytes());
            def_digests.push(sha256.clone());
            inputs.push(Input::Definition {
                platforms,
                sha256,
                lines,
            });
        }
        def_digests.sort();
        for d in &def_digests {
            text.push_str(&format!("definition {d}\n"));
        }
        // The same path read twice is one input; listed in path order.
        let mut files: Vec<FileInput> = files.into_iter().collect();
        files.sort_by(|a, b| a.path().cmp(b.path()));
        for f in &files {
            match f {
                FileInput::File {
                    path,
                    sha256,
                    executable,
                } => text.push_str(&format!(
                    "file {} {} {sha256}\n",
                    Value::from(path.as_str()),
                    if *executable { "x" } else { "-" }
                )),
                FileInput::Symlink { path, target } => text.push_str(&format!(
                    "symlink {} {}\n",
                    Value::from(path.as_str()),
                    Value::from(target.as_str())
                )),
            }
        }
        inputs.extend(parents);
        inputs.extend(files.into_iter().map(Input::File));
        let h = ImageHash {
            name: name.to_string(),
            digest: super::context::sha256_hex(text.as_bytes()),
            inputs,
        };
        self.memo.insert(name.to_string(), h.clone());
        Ok(h)
    }
}

fn push_unique(v: &mut Vec<Input>, i: Input) {
    if !v.contains(&i) {
        v.push(i);
    }
}

/// The images an image is made from: its `from`, its venv builder when that differs, and
/// the images it copies artifacts from (`copy`), each once.
pub fn bases(img: &PlanImage) -> Vec<(&'static str, &Base)> {
    let mut out = vec![("from", &img.base)];
    if let Some(v) = &img.venv
        && !same_base(&v.builder, &img.base)
    {
        out.push(("venv-builder", &v.builder));
    }
    for b in img.copy_sources() {
        if !out.iter().any(|(_, o)| same_base(o, b)) {
            out.push(("copy", b));
        }
    }
    out
}

/// Bases compared without their spans.
pub fn same_base(a: &Base, b: &Base) -> bool {
    match (a, b) {
        (Base::Image { reference: x, .. }, Base::Image { reference: y, .. }) => x == y,
        (Base::Layer { name: x, .. }, Base::Layer { name: y, .. }) => x == y,
        _ => false,
    }
}

/// The canonical text of an image's definition (without its bases), one JSON array a line.
/// Every field is destructured without `..`: a field added to the plan does not compile here
/// until it is decided whether it goes into the hash.
pub fn definition_lines(img: &PlanImage) -> Vec<String> {
    let PlanImage {
        name: _,
        kind: _,
        key: _,
        span: _,
        description: _,
        base: _,
        steps,
        config,
        venv,
        install_env,
        // Derived: the owner it implies is already in the steps.
        declared_user: _,
        // How foreign-platform installs run, not what they install.
        cross_install: _,
        // How the build platform's pip steps install (resolved into lock groups, or pip),
        // not what they install.
        resolve: _,
        // Whether it is shipped, not what it holds.
        build_only: _,
        // Derived: the interpreter and the torch build are in the steps.
        python: _,
        torch_backend: _,
        // How foreign-platform installs run (the overlay itself is in the steps).
        platform_specific: _,
    } = img;
    let mut lines: Vec<Value> = vec![];
    if !install_env.is_empty() {
        lines.push(json!(["install-env", pairs(install_env)]));
    }
    if let Some(v) = venv {
        let VenvPlan {
            builder: _,
            python,
            apt,
            path,
            pip,
            span: _,
            pip_span: _,
        } = v;
        lines.push(json!(["venv", python, apt, path, pip_json(pip)]));
    }
    for Step { kind, span: _ } in steps {
        lines.push(step_json(kind));
    }
    let ConfigChanges {
        env,
        workdir,
        user,
        cmd,
        entrypoint,
        exposed_ports,
        healthcheck,
        labels,
        stop_signal,
    } = config;
    if !env.is_empty() {
        lines.push(json!(["env", pairs(env)]));
    }
    if let Some(w) = workdir {
        lines.push(json!(["workdir", w]));
    }
    if let Some(u) = user {
        lines.push(json!(["user", u]));
    }
    // A shell form with the default shell: a layer's hash does not depend on its base
    // image's config.
    if let Some(c) = entrypoint {
        lines.push(json!(["entrypoint", c.argv(None)]));
    }
    if let Some(c) = cmd {
        lines.push(json!(["cmd", c.argv(None)]));
    }
    if !exposed_ports.is_empty() {
        lines.push(json!(["expose", exposed_ports]));
    }
    match healthcheck {
        None => {}
        Some(None) => lines.push(json!(["healthcheck", null])),
        Some(Some(h)) => {
            let Healthcheck {
                test,
                interval_ns,
                timeout_ns,
                start_period_ns,
                retries,
            } = h;
            lines.push(json!([
                "healthcheck",
                test,
                interval_ns,
                timeout_ns,
                start_period_ns,
                retries
            ]));
        }
    }
    if !labels.is_empty() {
        lines.push(json!(["labels", pairs(labels)]));
    }
    if let Some(s) = stop_signal {
        lines.push(json!(["stop-signal", s]));
    }
    lines.iter().map(Value::to_string).collect()
}

fn pairs(v: &[(String, String)]) -> Value {
    Value::Array(v.iter().map(|(k, v)| json!([k, v])).collect())
}

fn pip_json(p: &PipStep) -> Value {
    let PipStep {
        requirements,
        includes,
        specs,
        local,
        index_url,
        extra_index_urls,
        python,
        installer,
    } = p;
    let installer = match installer {
        crate::plan::Installer::Pip => json!("pip"),
        crate::plan::Installer::Uv { version } => json!(["uv", version]),
    };
    let mut v = json!([
        requirements,
        specs,
        index_url,
        extra_index_urls,
        python,
        installer
    ]);
    // Only when there are local packages (included files), so that the hashes of other steps
    // stay as they were.
    if let Some(a) = v.as_array_mut() {
        if !local.is_empty() {
            a.push(json!(["local", local]));
        }
        if !includes.is_empty() {
            a.push(json!(["includes", includes]));
        }
    }
    v
}

fn step_json(k: &StepKind) -> Value {
    match k {
        StepKind::Apt(a) if *a == AptStep::plain(a.packages.clone()) => {
            json!(["apt", a.packages])
        }
        StepKind::Apt(a) => json!([
            "apt",
            a.packages,
            a.debs,
            a.recommends,
            a.sources.iter().map(|s| s.deb822()).collect::<Vec<_>>()
        ]),
        StepKind::CreateUser(UserPlan {
            name,
            uid,
            gid,
            home,
            shell,
        }) => json!(["useradd", name, uid, gid, home, shell]),
        StepKind::Mkdir { path, owner } => json!(["mkdir", path, owner]),
        // The context paths only when there are some: other run steps hash as they did.
        // (An activated conda environment likewise.)
        StepKind::Run {
            command,
            context,
            activate: None,
        } if context.is_empty() => json!(["run", command]),
        StepKind::Run {
            command,
            context,
            activate: None,
        } => json!(["run", command, context]),
        StepKind::Run {
            command,
            context,
            activate: Some(a),
        } => json!(["run", command, context, a]),
        StepKind::Pip(p) => json!(["pip", pip_json(p)]),
        // What is installed: every group's files by URL and sha256 (not the lock's text).
        StepKind::Lock(l) => json!([
            "lock",
            l.python,
            l.python_version,
            l.groups
                .iter()
                .map(|g| json!([
                    g.id,
                    g.files
                        .iter()
                        .map(|f| json!([f.filename, f.url, f.sha256]))
                        .collect::<Vec<_>>()
                ]))
                .collect::<Vec<_>>()
        ]),
        StepKind::Conda(crate::plan::CondaStep {
            file,
            channels,
            installer,
            cache,
            env,
        }) => json!(["conda", file, channels, installer, cache, env]),
        StepKind::Copy {
            src,
            dest,
            owner,
            mode,
            exclude,
            optional: false,
        } => json!(["copy", src, dest, owner, mode, exclude]),
        StepKind::Copy {
            src,
            dest,
            owner,
            mode,
            exclude,
            optional: true,
        } => json!(["copy", src, dest, owner, mode, exclude, "optional"]),
        // The source image's content is an input of its own (a `copy` base).
        StepKind::CopyFrom {
            from,
            src,
            dest,
            owner,
            mode,
            exclude,
        } => {
            let from = match from {
                Base::Layer { name, .. } => name,
                Base::Image { reference, .. } => reference,
                Base::Dockerfile(d) => &d.file,
                Base::Context { name, .. } => name,
            };
            json!(["copy-from", from, src, dest, owner, mode, exclude])
        }
        StepKind::CopyVenv { path, owner } => json!(["copy-venv", path, owner]),
    }
}

#[cfg(test)]
mod tests {
    use super::super::context::MemContext;
    use super::super::testutil::*;
    use super::*;
    use crate::plan::BuildOptions;
    use crate::report::plan_all;

    fn ctx() -> MemContext {
        MemContext::new()
            .file("libs/requirements-base.txt", "fastapi==0.115\n")
            .file("libs/common/__init__.py", "")
            .file("libs/common/util.py", "X = 1\n")
            .file("apps/api/__main__.py", "print('api')\n")
            .file("apps/worker/requirements.txt", "rq\n")
            .file("apps/worker/__main__.py", "print('w')\n")
            .file("apps/ingest/requirements.txt", "httpx\n")
            .file("apps/ingest/__main__.py", "print('i')\n")
    }

    fn hashes(text: &str, c: &MemContext, opts: &BuildOptions) -> BTreeMap<String, String> {
        let s = stack(text);
        let plans = vec![(opts.platform.clone(), plan_all(&s, opts).unwrap().images)];
        let ig = Ignore::new(&["**/__pycache__"]).unwrap();
        let mut h = Hasher::new(&plans, c, &ig);
        s.images
            .iter()
            .map(|i| {
                let n = i.name.value.clone();
                (n.clone(), h.hash(&n).unwrap().digest)
            })
            .collect()
    }

    #[test]
    fn optional_copies_that_match_nothing_hash_and_a_match_changes_the_hash() {
        let text = "[layers.app]\nfrom = \"debian:bookworm-slim\"\ncopy = [\"apps/api\", { src = \"conf/local.toml\", optional = true }, { src = \"extra*.txt\", optional = true }]\n";
        let without = hashes(text, &ctx(), &opts());
        let mut c = ctx();
        c.set("conf/local.toml", "x = 1\n");
        let with_conf = hashes(text, &c, &opts());
        c.set("extra-a.txt", "a\n");
        let with_both = hashes(text, &c, &opts());
        assert_ne!(without["app"], with_conf["app"]);
        assert_ne!(with_conf["app"], with_both["app"]);
        // A required copy that matches nothing is still an error.
        let s = stack("[layers.app]\nfrom = \"debian:bookworm-slim\"\ncopy = [\"extra*.txt\"]\n");
        let plans = vec![(
            opts().platform.clone(),
            plan_all(&s, &opts()).unwrap().images,
        )];
        let ig = Ignore::new::<&str>(&[]).unwrap();
        let e = Hasher::new(&plans, &ctx(), &ig).hash("app").unwrap_err();
        assert!(e.contains("extra*.txt"), "{e}");
    }

    #[test]
    fn code_changes_only_change_their_service() {
        let before = hashes(MULTI, &ctx(), &opts());
        let mut c = ctx();
        c.set("apps/api/__main__.py", "print('api v2')\n");
        c.set("apps/api/new.py", "");
        c.set("unrelated.txt", "x");
        c.set("libs/common/__pycache__/util.pyc", "junk");
        let after = hashes(MULTI, &c, &opts());
        assert_ne!(before["api"], after["api"]);
        for n in ["system", "runtime", "worker", "ingest"] {
            assert_eq!(before[n], after[n], "{n}");
        }
    }

    #[test]
    fn requirements_change_the_layer_and_everything_on_it() {
        let before = hashes(MULTI, &ctx(), &opts());
        let mut c = ctx();
        c.set("libs/requirements-base.txt", "fastapi==0.116\n");
        let after = hashes(MULTI, &c, &opts());
        assert_eq!(before["system"], after["system"]);
        for n in ["runtime", "api", "worker", "ingest"] {
            assert_ne!(before[n], after[n], "{n}");
        }
    }

    #[test]
    fn a_local_package_changes_the_layer_that_installs_it() {
        let text = "[layers.base]\nfrom = \"python:3.12-slim\"\npip = [\"./libs/common\"]\n\
                    [services.api]\nfrom = \"base\"\ncopy = [\"apps/api\"]\n";
        let before = hashes(text, &ctx(), &opts());
        let mut c = ctx();
        c.set("libs/common/util.py", "X = 2\n");
        let after = hashes(text, &c, &opts());
        assert_ne!(before["base"], after["base"]);
        assert_ne!(before["api"], after["api"]);
        // Without local packages a pip step hashes as it always did.
        let plain = "[layers.base]\nfrom = \"python:3.12-slim\"\npip = [\"numpy\"]\n";
        let a = hashes(plain, &ctx(), &opts());
        assert_eq!(a, hashes(plain, &c, &opts()));
    }

    #[test]
    fn the_context_of_a_run_step_changes_its_layer() {
        let text = "[layers.base]\nfrom = \"python:3.12-slim\"\n\
                    run = [{ cmd = \"make\", context = [\"libs/common\"] }]\n";
        let before = hashes(text, &ctx(), &opts());
        let mut c = ctx();
        c.set("libs/common/util.py", "X = 2\n");
        assert_ne!(before["base"], hashes(text, &c, &opts())["base"]);
        let mut c = ctx();
        c.set("apps/api/__main__.py", "changed\n");
        assert_eq!(before["base"], hashes(text, &c, &opts())["base"]);
    }

    #[test]
    fn definitions_and_args() {
        let base = hashes(MULTI, &ctx(), &opts());
        // An arg only services use changes only services.
        let mut o = opts();
        o.build_args.insert("APP_VERSION".into(), "1.2.3".into());
        let v = hashes(MULTI, &ctx(), &o);
        assert_eq!(base["system"], v["system"]);
        assert_eq!(base["runtime"], v["runtime"]);
        assert_ne!(base["api"], v["api"]);
        assert_eq!(base["ingest"], v["ingest"], "ingest has no version label");
        // An arg the base image uses changes everything on it.
        let mut o = opts();
        o.build_args.insert("PYTHON_VERSION".into(), "3.13".into());
        let p = hashes(MULTI, &ctx(), &o);
        assert!(base.iter().all(|(k, v)| p[k] != *v));
        // Names, descriptions and comments are not content.
        let renamed = MULTI
            .replace("HTTP API", "The API")
            .replace("[stack]", "# a comment\n[stack]");
        assert_eq!(hashes(&renamed, &ctx(), &opts()), base);
        // A step is.
        let more = MULTI.replace("apt = [\"jq\"]", "apt = [\"jq\", \"git\"]");
        let m = hashes(&more, &ctx(), &opts());
        assert_ne!(base["worker"], m["worker"]);
        assert_eq!(base["api"], m["api"]);
    }

    #[test]
    fn platforms_only_matter_when_the_definition_depends_on_them() {
        let s = stack(MULTI);
        let c = ctx();
        let ig = Ignore::default();
        let one = |plats: &[Platform], s: &crate::stack::Stack| {
            let plans: Vec<(Platform, Vec<PlanImage>)> = plats
                .iter()
                .map(|p| {
                    let o = BuildOptions {
                        platform: p.clone(),
                        ..opts()
                    };
                    (p.clone(), plan_all(s, &o).unwrap().images)
                })
                .collect();
            Hasher::new(&plans, &c, &ig).hash("runtime").unwrap()
        };
        let amd = Platform::linux_amd64();
        let arm = Platform::new("linux", "arm64", None);
        let a = one(std::slice::from_ref(&amd), &s);
        let both = one(&[amd.clone(), arm.clone()], &s);
        assert_eq!(a.digest, both.digest);
        let defs: Vec<&Input> = both
            .inputs
            .iter()
            .filter(|i| matches!(i, Input::Definition { .. }))
            .collect();
        assert_eq!(defs.len(), 1);
        let arch = stack(&MULTI.replace(
            "requirements = [\"libs/requirements-base.txt\"]",
            "requirements = [\"libs/requirements-base.txt\"]\nrun = [\"echo ${TARGETARCH}\"]",
        ));
        assert_ne!(
            one(std::slice::from_ref(&amd), &arch).digest,
            one(&[amd, arm], &arch).digest
        );
    }

    #[test]
    fn inputs_list_what_went_in() {
        let s = stack(MULTI);
        let plans = vec![(
            Platform::linux_amd64(),
            plan_all(&s, &opts()).unwrap().images,
        )];
        let c = ctx();
        let ig = Ignore::default();
        let mut h = Hasher::new(&plans, &c, &ig);
        let r = h.hash("runtime").unwrap();
        assert_eq!(r.short().len(), 12);
        let j = r.to_json(false);
        assert_eq!(j["layer"], "runtime");
        assert_eq!(j["hash"], r.short());
        let inputs = j["inputs"].as_array().unwrap();
        let kinds: Vec<&str> = inputs.iter().map(|i| i["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["definition", "layer", "file", "file", "file"]);
        assert_eq!(inputs[1]["name"], "system");
        assert_eq!(inputs[2]["path"], "libs/common/__init__.py");
        assert_eq!(inputs[4]["path"], "libs/requirements-base.txt");
        let sys = h.hash("system").unwrap();
        assert_eq!(
            sys.to_json(true)["inputs"][1]["reference"],
            "docker.io/library/python:3.12-slim"
        );
        // A missing requirements file is an error naming it.
        let c = ctx();
        let mut c2 = c.clone();
        c2.remove("libs/requirements-base.txt");
        let e = Hasher::new(&plans, &c2, &ig).hash("api").unwrap_err();
        assert!(e.contains("libs/requirements-base.txt"), "{e}");
    }
}
