//! The converter: the one module that sees both the plan and LLB. Plan + base image configs →
//! LLB graph, image config and the source map.
//!
//! [`exec`] (bases, context, execs, apt), [`python`], [`cross`], [`lock`] (lock files: wheels
//! as HTTP sources, a layer per group), [`image`] (one image, its
//! config), [`names`] (the vertex-name grammar), [`resolve`] (base image configs), [`shell`] (the scripts, quoted in one place) and
//! [`values`] (pure helpers).

mod cross;
mod dockerfile;
mod exec;
mod image;
mod lock;
mod names;
mod python;
pub mod resolve;
mod sdist;
mod shell;
mod values;

pub use dockerfile::{DOCKERFILE_FRONTEND, DockerfileRequest, dockerfile_request};
pub use resolve::*;
pub use values::rfc3339;
use values::{optional_src, resolve_dest};

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::image::ImageConfig;
use crate::llb::{Graph, Mount, Output, VertexMeta};
use crate::pb;
use crate::plan::{BuildOptions, Plan};
use crate::platform::Platform;
use crate::source::{SourceFile, Span};

/// Where a conda environment file is mounted.
pub const CONDA_DIR: &str = "/run/layerstack/conda";

/// Where the uv tool is mounted into install steps.
pub const UV_DIR: &str = "/run/layerstack/uv";

/// Where an apt step's context files (`.deb` files, source keys) are mounted.
pub const APT_FILES_DIR: &str = "/run/layerstack/apt";

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
/// onto it, and (probe) writes its verdict. The script gets them from [`cross_script`].
pub const CROSS_TARGET: &str = "/run/layerstack/target";
pub const CROSS_OUT: &str = "/run/layerstack/out";
pub const CROSS_STATUS: &str = "/run/layerstack/status";
/// Where a cross-install (or each group install of a resolved lock) sees the output of the
/// probe that allowed it (read-only, unused by the script): the probe is then part of the
/// image's graph, so a `mode=max` cache export holds it and a build importing that cache gets
/// the probe from it too.
pub const CROSS_PROBE: &str = "/run/layerstack/probe";

/// Installs wheels for a foreign platform on the build platform (see `cross_install.py`), with
/// placeholders for the mount paths.
const CROSS_SCRIPT: &str = include_str!("cross_install.py");

/// The uv binary inside [`UV_DIR`].
pub fn uv_bin() -> String {
    format!("{UV_DIR}/bin/uv")
}

/// The cross-install script as it is written into a build: its mount-path placeholders filled
/// in from the constants above, so the paths are written once, here.
pub(crate) fn cross_script() -> String {
    [
        ("@CROSS_TARGET@", CROSS_TARGET.to_string()),
        ("@CROSS_OUT@", CROSS_OUT.to_string()),
        ("@CROSS_STATUS@", CROSS_STATUS.to_string()),
        ("@UV_BIN@", uv_bin()),
    ]
    .iter()
    .fold(CROSS_SCRIPT.to_string(), |text, (placeholder, path)| {
        text.replace(placeholder, path)
    })
}

/// Whether a pip step for a foreign platform can install on the build platform, as a probe
/// found out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrossVerdict {
    /// Every distribution has a wheel for the target: install on the build platform with the
    /// cross-install script (no lock: uv, or an index without sha256 hashes).
    Cross,
    /// Every distribution has a wheel for the target and the resolve wrote them as a lock:
    /// installed like a `lock` step (checksummed HTTP sources, group installs, merge).
    Resolved(ResolvedLock),
    /// Install under emulation, for this reason (a source build, a conflict…).
    Emulate(String),
}

/// What a resolve step wrote (`pylock.toml` and its `status.json`), read back by the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedLock {
    /// The PEP 751 `pylock.toml`: the wheels the target does not have yet, URL and sha256.
    pub pylock: String,
    /// The interpreter's CPython version (`3.12.7`) on the build platform's twin, the
    /// target's.
    pub python: String,
    /// `glibc2.N`, the C library the wheels were resolved for.
    pub libc: String,
    /// The interpreter's absolute path (the same file in the image), which installs the groups.
    pub executable: String,
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

/// The context source that loads one group of context paths, alone: the same vertex the
/// build uses (same digest), for the frontend to solve and look the paths up in before any
/// install runs.
pub fn context_definition(opts: &BuildOptions, read: &crate::plan::ContextRead) -> pb::Definition {
    let mut g = Graph::new();
    let key = crate::plan::resources::source_key(&read.paths);
    let ctx = exec::context_options(opts, read.context.as_deref());
    let out = exec::local_source(
        &mut g,
        &ctx,
        &key,
        read.literal,
        meta(
            names::internal(exec::load_context_text(read.context.as_deref(), &key)),
            read.span,
        ),
    );
    g.marshal(out, None)
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
        lean: false,
        budget: crate::interp::Budget::plan(),
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
    /// Converting a twin: only what an installer's environment needs (base, apt, users,
    /// dirs, files); `run`, conda and pip steps are skipped.
    lean: bool,
    /// What env interpolation may still produce ([`crate::interp::MAX_PLAN_BYTES`]).
    budget: crate::interp::Budget,
}

fn meta(name: String, span: Span) -> VertexMeta {
    VertexMeta {
        name,
        span: Some(span),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cross_script_gets_its_mount_paths_from_the_converter() {
        let script = cross_script();
        assert!(
            !script.contains("@CROSS_") && !script.contains("@UV_"),
            "a placeholder left unfilled"
        );
        for line in [
            format!("TARGET = \"{CROSS_TARGET}\""),
            format!("OUT = \"{CROSS_OUT}\""),
            format!("STATUS = \"{CROSS_STATUS}\""),
            format!("UV = \"{UV_DIR}/bin/uv\""),
        ] {
            assert!(script.lines().any(|l| l == line), "{line}");
        }
    }

    #[test]
    fn copy_destinations() {
        assert_eq!(optional_src("entrypoint.sh"), "entrypoint.s[h]");
        assert_eq!(optional_src("./conf/local.toml"), "con[f]/local.toml");
        assert_eq!(optional_src("scripts/*.sh"), "script[s]/*.sh");
        assert_eq!(optional_src("extra*.txt"), "extra*.txt");
        assert_eq!(optional_src("a]/x"), "a[\\]]/x");
        assert_eq!(resolve_dest("/app", "apps/api", None), "/app/apps/api");
        assert_eq!(resolve_dest("/app", "apps/api/", None), "/app/apps/api");
        assert_eq!(resolve_dest("", "main.py", None), "/main.py");
        assert_eq!(resolve_dest("/app", "src", Some("./code/")), "/app/code/");
        assert_eq!(resolve_dest("/app", "src", Some("/opt/x")), "/opt/x");
        assert_eq!(resolve_dest("/app", ".", None), "/app/");
        assert_eq!(resolve_dest("/app", "scripts/*.sh", None), "/app/scripts/");
        assert_eq!(resolve_dest("/app", "*.py", None), "/app/");
    }

    fn llb_text(stack: &str, merge: bool) -> String {
        let file = crate::source::SourceFile::new("stack.toml", stack);
        let opts = crate::plan::BuildOptions {
            merge,
            ..Default::default()
        };
        let (_, plan) = crate::load(&file, &opts).expect("valid stack");
        let out = convert(&plan, &opts, &NoImages, &file).expect("converts");
        crate::llb::dump(&out.definition)
    }

    #[test]
    fn named_contexts_load_their_own_local_source_and_stage_under_at_name() {
        let stack = "[services.api]\nfrom = \"python:3.12-slim\"\nworkdir = \"/srv\"\n\
             requirements = [\"requirements.txt\", \"svc-api:reqs/api.txt\"]\n\
             run = [{ cmd = \"ls @svc-api/native\", context = [\"svc-api:native\"] }]\n\
             copy = [{ context = \"svc-api\", src = \"app/\" }]\n";
        let file = crate::source::SourceFile::new("stack.toml", stack);
        let svc = crate::plan::ContextOptions {
            name: "api-dir".into(),
            session_id: "s2".into(),
            exclude_patterns: vec!["secret.txt".into()],
        };
        let opts = crate::plan::BuildOptions {
            named_contexts: [("svc-api".to_string(), svc)].into_iter().collect(),
            ..Default::default()
        };
        let (_, plan) = crate::load(&file, &opts).expect("valid stack");
        let out = convert(&plan, &opts, &NoImages, &file).expect("converts");
        let text = crate::llb::dump(&out.definition);
        // The named context's own local source, session and .dockerignore.
        assert!(text.contains("local://api-dir"), "{text}");
        assert!(
            text.contains("local.excludepatterns: [\"secret.txt\"]"),
            "{text}"
        );
        assert!(text.contains("load context svc-api:reqs/api.txt"), "{text}");
        // Staged under @svc-api, read by pip from there.
        assert!(
            text.contains(":/reqs/api.txt → action0:/@svc-api/reqs/api.txt"),
            "{text}"
        );
        assert!(
            text.contains("/run/layerstack/requirements/@svc-api/reqs/api.txt"),
            "{text}"
        );
        assert!(
            text.contains(":/native → scratch:/@svc-api/native"),
            "{text}"
        );
        // The copy reads `app` of the named context into the workdir.
        assert!(text.contains(":/app → v8:/srv/app"), "{text}");
        // The main context is still `context`, without the named one's excludes.
        assert!(text.contains("local://context"), "{text}");
        let reads = plan.context_reads();
        let named = reads.iter().find(|r| r.context.is_some()).unwrap();
        let def = context_definition(&opts, named);
        let dumped = crate::llb::dump(&def);
        assert!(dumped.contains("local://api-dir"), "{dumped}");
    }

    const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn image_context_opts() -> crate::plan::BuildOptions {
        crate::plan::BuildOptions {
            image_contexts: [(
                "tools".to_string(),
                crate::plan::ImageContext::Image("docker.io/library/alpine:3.20".into()),
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn an_image_context_is_one_pinned_image_source_read_with_absolute_paths() {
        let stack = "[services.api]\nfrom = \"python:3.12-slim\"\nworkdir = \"/srv\"\n\
             requirements = [\"tools:/opt/reqs.txt\"]\n\
             pip = [\"tools:/opt/pkg\"]\n\
             run = [{ cmd = \"ls @tools/opt/data\", context = [\"tools:/opt/data\"] }]\n\
             copy = [{ context = \"tools\", src = \"/usr/local/bin/tool\", dest = \"/usr/local/bin/\" }]\n";
        let file = crate::source::SourceFile::new("stack.toml", stack);
        let opts = image_context_opts();
        let (_, plan) = crate::load(&file, &opts).expect("valid stack");
        assert_eq!(
            plan.image_contexts.keys().collect::<Vec<_>>(),
            vec!["tools"],
            "the plan carries the image context it reads"
        );
        // The edge resolves it like a base image.
        assert!(plan.image_refs().contains("docker.io/library/alpine:3.20"));
        // No local source for it: the frontend's context check leaves it out.
        let reads = plan.context_reads();
        let tools: Vec<_> = reads
            .iter()
            .filter(|r| r.context.as_deref() == Some("tools"))
            .map(|r| r.paths.clone())
            .collect();
        assert_eq!(
            tools,
            vec![
                vec!["opt/data".to_string()],
                vec!["opt/reqs.txt".to_string()],
                vec!["opt/pkg".to_string()],
                vec!["usr/local/bin/tool".to_string()],
            ]
        );
        let mut images = ResolvedImages::default();
        images.digests.insert(
            (
                "docker.io/library/alpine:3.20".into(),
                crate::platform::Platform::linux_amd64().id(),
            ),
            DIGEST.into(),
        );
        let out = convert(&plan, &opts, &images, &file).expect("converts");
        let text = crate::llb::dump(&out.definition);
        // One image source, pinned by digest, whatever reads it; no local source named tools.
        let pinned = format!("docker-image://docker.io/library/alpine:3.20@{DIGEST}");
        assert_eq!(text.matches(&pinned).count(), 1, "{text}");
        assert!(!text.contains("local://tools"), "{text}");
        // Staged from the image's root under @tools, read from there.
        assert!(
            text.contains(":/opt/reqs.txt → scratch:/@tools/opt/reqs.txt"),
            "{text}"
        );
        assert!(
            text.contains("/run/layerstack/requirements/@tools/opt/reqs.txt"),
            "{text}"
        );
        assert!(
            text.contains(":/opt/data → scratch:/@tools/opt/data"),
            "{text}"
        );
        // The copy takes the absolute path out of the image.
        assert!(
            text.contains(":/usr/local/bin/tool → ") && text.contains("/usr/local/bin/"),
            "{text}"
        );
        assert!(
            text.contains("context tools: docker.io/library/alpine:3.20"),
            "{text}"
        );
    }

    #[test]
    fn image_context_mistakes_are_located_errors() {
        let opts = image_context_opts();
        let err = |stack: &str| {
            let file = crate::source::SourceFile::new("stack.toml", stack);
            let e = crate::load(&file, &opts).expect_err("invalid");
            e.diagnostics
                .errors()
                .map(|d| {
                    (
                        d.key.clone().unwrap_or_default(),
                        d.message.clone(),
                        d.span.map(|s| file.line_col(s.start).line),
                    )
                })
                .collect::<Vec<_>>()
        };
        let head = "[services.api]\nfrom = \"python:3.12-slim\"\n";
        // A relative path in an image.
        let e = err(&format!(
            "{head}copy = [{{ context = \"tools\", src = \"bin/tool\" }}]\n"
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "services.api.copy[0].src");
        assert!(
            e[0].1.contains("is an image: its paths are absolute"),
            "{e:?}"
        );
        assert_eq!(e[0].2, Some(3));
        let e = err(&format!("{head}requirements = [\"tools:reqs.txt\"]\n"));
        assert_eq!(e[0].0, "services.api.requirements[0]", "{e:?}");
        // A context the build was not given, with what it was given.
        let e = err(&format!(
            "{head}copy = [{{ context = \"tool\", src = \"/x\" }}]\n"
        ));
        assert_eq!(e[0].0, "services.api.copy[0].context", "{e:?}");
        assert!(
            e[0].1.contains("was not given (did you mean `tools`?)"),
            "{e:?}"
        );
        // `..` cannot climb out of the image's root.
        let e = err(&format!(
            "{head}copy = [{{ context = \"tools\", src = \"/a/../../x\" }}]\n"
        ));
        assert!(e[0].1.contains("`..` is not allowed"), "{e:?}");
        // Lock files are read by the edge from directories.
        let e = err(&format!("{head}lock = \"tools:/uv.lock\"\n"));
        assert!(
            e.iter()
                .any(|d| d.1.contains("is an image; this key reads a directory")),
            "{e:?}"
        );
    }

    #[test]
    fn an_input_context_is_spliced_once_as_base_and_as_files() {
        // Another target's result, as buildx sends it: a Definition made elsewhere.
        let mut other = crate::llb::Graph::new();
        let root = other.image(
            "docker.io/library/busybox:latest",
            &crate::platform::Platform::linux_amd64(),
            None,
            crate::llb::VertexMeta::default(),
        );
        let def = other.marshal(root, None);
        let stack = "[layers.app]\nfrom = \"base\"\n\
             copy = [{ context = \"base\", src = \"/etc/os-release\", dest = \"/srv/\" }]\n";
        let file = crate::source::SourceFile::new("stack.toml", stack);
        let opts = crate::plan::BuildOptions {
            image_contexts: [(
                "base".to_string(),
                crate::plan::ImageContext::Input("0-base".into()),
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let (_, plan) = crate::load(&file, &opts).expect("valid stack");
        assert!(
            matches!(&plan.images[0].base, crate::plan::Base::Context { name, .. } if name == "base"),
            "{:?}",
            plan.images[0].base
        );
        assert!(plan.image_refs().is_empty());
        // Offline there is no input: an error at the `from` line, no stand-in.
        let e = convert(&plan, &opts, &NoImages, &file).expect_err("no input");
        assert!(
            e.errors()
                .any(|d| d.message.contains("frontend input `0-base`")),
            "{e:?}"
        );
        let mut images = ResolvedImages::default();
        images.inputs.insert(
            "0-base".into(),
            DockerfileResult {
                definition: def,
                config: br#"{"architecture":"amd64","os":"linux","config":{"Env":["FROM_INPUT=1"],"WorkingDir":"/w"}}"#.to_vec(),
            },
        );
        let out = convert(&plan, &opts, &images, &file).expect("converts");
        let text = crate::llb::dump(&out.definition);
        assert_eq!(
            text.matches("docker-image://docker.io/library/busybox:latest")
                .count(),
            1,
            "{text}"
        );
        assert!(text.contains(":/etc/os-release → "), "{text}");
        let config = String::from_utf8(out.image_config.clone()).unwrap();
        assert!(config.contains("FROM_INPUT=1"), "{config}");
    }

    #[test]
    fn merged_copies_need_a_known_gid() {
        let stack = |user: &str| {
            format!(
                "[layers.base]\nfrom = \"debian:bookworm-slim\"\nuser = {user}\nworkdir = \"/app\"\n\
                 [services.app]\nfrom = \"base\"\ncopy = [\"src\"]\n"
            )
        };
        // No gid: the group named like the user may exist in the base (Debian's `operator`,
        // gid 37): the copy is chained and owned by name, never by a guessed 1000:1000.
        let text = llb_text(&stack("{ name = \"operator\", uid = 1000 }"), true);
        assert!(!text.contains("(merge)"), "{text}");
        assert!(!text.contains("1000:1000"), "{text}");
        assert!(text.contains("owner=operator"), "{text}");
        // An explicit gid is the user's primary group (useradd -g GID): merged with it.
        let text = llb_text(
            &stack("{ name = \"operator\", uid = 1000, gid = 1001 }"),
            true,
        );
        assert!(text.contains("copy src (merge)"), "{text}");
        assert!(text.contains("owner=1000:1001"), "{text}");
        assert!(text.contains("-u 1000 -g 1001 -s"), "{text}");
    }

    #[test]
    fn install_env_refers_to_the_step_env() {
        // `$${NAME}` (what the hint for an unknown `${NAME}` suggests) is the step's env.
        let text = llb_text(
            "[args]\nSUB = \"bin\"\n[layers.base]\nfrom = \"debian:bookworm-slim\"\nenv = { TOOLS = \"/opt/tools\" }\n\
             install-env = { PATH = \"$${TOOLS}/${SUB}:$${PATH}\" }\nrun = [\"tool\"]\n",
            false,
        );
        assert!(
            text.contains(
                "env: PATH=/opt/tools/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ),
            "{text}"
        );
        // An unknown `${NAME}` is still an error, with that hint.
        let file = crate::source::SourceFile::new(
            "stack.toml",
            "[layers.base]\nfrom = \"debian:bookworm-slim\"\ninstall-env = { PATH = \"/x:${PATH}\" }\nrun = [\"x\"]\n",
        );
        let err = crate::load(&file, &Default::default()).expect_err("unknown name");
        let msg = err.diagnostics.render(&file);
        assert!(
            msg.contains("write $${PATH} for the value it has in the install step's env"),
            "{msg}"
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
