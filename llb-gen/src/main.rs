//! `llb-gen`: check a stack and print its LLB (binary for `buildctl build`, or a readable dump),
//! its layer tree (`plan`), image graph (`graph`), content hashes (`hash`) and a bake file
//! (`bake`). The only module that reads files.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use prost::Message;

use llb_gen::convert::{CrossEnv, NoImages, convert_cross};
use llb_gen::diag::Severity;
use llb_gen::plan::{BuildOptions, ContextOptions, Network};
use llb_gen::platform::Platform;
use llb_gen::report;
use llb_gen::source::SourceFile;
use llb_gen::stack::Stack;

#[derive(Parser)]
#[command(
    name = "llb-gen",
    version,
    about = "layerstack: stack.toml → BuildKit LLB"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List what `--target` accepts: services, layers, and `NAME@VARIANT` for each variant.
    Targets {
        /// The stack file.
        stack: PathBuf,
    },
    /// Validate a stack: print every diagnostic; exit 1 when there are errors.
    Check {
        /// The stack file.
        stack: PathBuf,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Print the LLB Definition of one target (binary by default, pipeable to `buildctl build`).
    Llb {
        stack: PathBuf,
        #[command(flatten)]
        build: BuildArgs,
        /// `binary` (a marshalled pb.Definition) or `text` (a readable dump).
        #[arg(long, value_enum, default_value_t = Format::Binary)]
        format: Format,
    },
    /// Print the layer tree: every layer and service under what it is built from, with its
    /// steps and config, and which services use each layer. With `--target`: only what that
    /// target builds.
    Plan {
        stack: PathBuf,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Print the image graph (external base images, layers, services; an edge from each image
    /// to what is built on it) as Graphviz DOT or a Mermaid flowchart.
    Graph {
        stack: PathBuf,
        #[command(flatten)]
        build: BuildArgs,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Print the content hash of a layer or service: its planned definition, its bases'
    /// hashes, and the context files it reads. Usable as a tag.
    Hash {
        stack: PathBuf,
        /// The layer or service.
        #[arg(long, value_name = "NAME")]
        layer: String,
        #[command(flatten)]
        ctx: ContextArgs,
        /// Print the whole sha256 instead of its first 12 characters.
        #[arg(long)]
        full: bool,
        /// Print `{layer, hash, digest, inputs}` as JSON: everything that went into the hash.
        #[arg(long)]
        json: bool,
    },
    /// Print a docker-bake.json: a target per service (group `default`) and per layer (group
    /// `bases`), tagged from the stack's `tags` templates. `llb-gen bake stack.toml >
    /// docker-bake.json && docker buildx bake`.
    Bake {
        stack: PathBuf,
        #[command(flatten)]
        ctx: ContextArgs,
        /// `host` or `none`: `network` of every target. buildx reads it from a bake file from
        /// 0.17.0 on (then `docker buildx bake --allow network.host`); older ones drop it, so
        /// also write `--format compose` and bake both files.
        #[arg(long)]
        network: Option<String>,
        /// `json`: docker-bake.json. `compose`: the same targets as a compose file (no groups;
        /// save it as `.yml`), whose `build.network` every buildx from 0.8 on honours.
        #[arg(long, value_enum, default_value_t = BakeFileFormat::Json)]
        format: BakeFileFormat,
    },
    /// Print the JSON Schema of stack.toml (for editors: `#:schema` in the file), generated from
    /// the parser's key tables. With `--check FILE`: exit 1 unless FILE is exactly that.
    Schema {
        /// Compare with this file (e.g. schema/stack.schema.json) instead of printing.
        #[arg(long, value_name = "FILE")]
        check: Option<PathBuf>,
    },
    /// Python lock files (uv.lock, pylock.toml, `--hash`-pinned requirements).
    #[command(subcommand)]
    Lock(LockCmd),
}

#[derive(Subcommand)]
enum LockCmd {
    /// Print the files a target installs from a lock (one wheel per package, or an sdist) and
    /// the layer groups they fall into.
    Show {
        /// `uv.lock`, `pylock.toml` / `pylock.NAME.toml`, or a requirements file.
        file: PathBuf,
        #[arg(long, default_value = "linux/amd64")]
        platform: String,
        /// CPython version: `3.12`, `3.12.7`, `3.13t`.
        #[arg(long, default_value = "3.12")]
        python: String,
        /// `glibc2.N` or `musl1.N` (default: glibc 2.36).
        #[arg(long, default_value = "")]
        libc: String,
        /// An extra to install. Repeatable.
        #[arg(long)]
        extra: Vec<String>,
        /// A dependency group to install. Repeatable.
        #[arg(long)]
        group: Vec<String>,
        /// uv workspaces: only this member's dependencies.
        #[arg(long)]
        member: Option<String>,
    },
    /// Resolve a target's pip and uv steps in a build (`docker buildx build --call
    /// lock,format=json`: this command runs docker) and print one lock per image, every
    /// platform merged, or write them as `pylock.IMAGE.toml` files to commit (`--out`).
    Resolve {
        /// The stack file (its `# syntax=` line names the frontend).
        stack: PathBuf,
        /// The build context.
        #[arg(long, default_value = ".")]
        context: PathBuf,
        /// The target (default: the stack's default target).
        #[arg(long)]
        target: Option<String>,
        /// A platform to resolve for. Repeatable (default: the builder's).
        #[arg(long)]
        platform: Vec<String>,
        /// `--build-arg` for the build. Repeatable.
        #[arg(long = "build-arg", value_name = "KEY=VALUE")]
        build_arg: Vec<String>,
        /// The buildx builder (default: the current one).
        #[arg(long)]
        builder: Option<String>,
        /// `--network` for the build's steps (`host` where RUN steps reach the index only so).
        #[arg(long)]
        network: Option<String>,
        /// Write each image's lock to DIR/pylock.IMAGE.toml instead of printing them.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BakeFileFormat {
    Json,
    Compose,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(clap::Args, Clone)]
struct ContextArgs {
    /// The build context (default: the stack file's directory). Its `.dockerignore` applies.
    #[arg(long, value_name = "DIR")]
    context: Option<PathBuf>,
    /// `NAME=value`, overriding an [args] default. Repeatable.
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    build_args: Vec<String>,
    /// `NAME=DIR`: a directory the stack reads as `NAME:PATH` (its own `.dockerignore`
    /// applies); `NAME=docker-image://REF`: build on REF wherever a `from` names the image
    /// NAME. Repeatable.
    #[arg(
        long = "build-context",
        value_name = "NAME=DIR|NAME=docker-image://REF"
    )]
    build_contexts: Vec<String>,
    /// Target platforms (repeatable or comma-separated; default: `stack.platforms`, else
    /// linux/amd64).
    #[arg(long, value_name = "PLATFORM")]
    platform: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Binary,
    Text,
}

#[derive(clap::Args, Clone)]
struct BuildArgs {
    /// The layer or service to build (default: the stack's default target).
    #[arg(long)]
    target: Option<String>,
    /// The target platform (`linux/amd64`, `linux/arm64`).
    #[arg(long)]
    platform: Option<String>,
    /// `NAME=value`, overriding an [args] default. Repeatable.
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    build_args: Vec<String>,
    /// `NAME=DIR`: a directory the stack reads as `NAME:PATH` (its own `.dockerignore`
    /// applies); `NAME=docker-image://REF`: build on REF wherever a `from` names the image
    /// NAME (as `docker buildx build --build-context` does). Repeatable.
    #[arg(
        long = "build-context",
        value_name = "NAME=DIR|NAME=docker-image://REF"
    )]
    build_contexts: Vec<String>,
    /// `host` or `none`: the network of RUN steps.
    #[arg(long)]
    network: Option<String>,
    /// Ignore the build cache for every step.
    #[arg(long)]
    no_cache: bool,
    /// Merge services' files onto their base with MergeOp (what the frontend does on
    /// BuildKit ≥ 0.10).
    #[arg(long)]
    merge: bool,
    /// The platform the build runs on: pip steps for another `--platform` cross-install on
    /// it (assumed to work; the frontend probes first). `--build-arg LAYERSTACK_CROSS=false`
    /// emulates them instead.
    #[arg(long, default_value = "linux/amd64")]
    build_platform: String,
    /// The build context (default: the stack file's directory): its `.dockerignore` applies,
    /// and requirements files are read from it to find the files they include.
    #[arg(long, value_name = "DIR")]
    context: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Targets { stack } => finish(targets_cmd(&stack)),
        Cmd::Check { stack, build } => check(&stack, &build),
        Cmd::Llb {
            stack,
            build,
            format,
        } => llb(&stack, &build, format),
        Cmd::Plan { stack, build } => finish(plan_cmd(&stack, &build)),
        Cmd::Graph {
            stack,
            build,
            format,
        } => finish(graph_cmd(&stack, &build, format)),
        Cmd::Hash {
            stack,
            layer,
            ctx,
            full,
            json,
        } => finish(hash_cmd(&stack, &layer, &ctx, full, json)),
        Cmd::Bake {
            stack,
            ctx,
            network,
            format,
        } => finish(bake_cmd(&stack, &ctx, network.as_deref(), format)),
        Cmd::Schema { check } => finish(schema_cmd(check.as_ref())),
        Cmd::Lock(LockCmd::Show {
            file,
            platform,
            python,
            libc,
            extra,
            group,
            member,
        }) => finish(read(&file).and_then(|f| {
            let choice = llb_gen::lock::select::Choice {
                extras: extra,
                groups: group,
                member,
                pins: vec![],
            };
            let opts = llb_gen::lock::show::ShowOptions {
                platform,
                python,
                libc,
                choice,
            };
            llb_gen::lock::show::show(&f, &opts)
        })),
        Cmd::Lock(LockCmd::Resolve {
            stack,
            context,
            target,
            platform,
            build_arg,
            builder,
            network,
            out,
        }) => {
            let mut args: Vec<String> = vec![];
            let mut opt = |flag: &str, v: Option<String>| {
                if let Some(v) = v {
                    args.extend([flag.to_string(), v]);
                }
            };
            opt("--builder", builder);
            opt("--target", target.clone());
            opt("--network", network);
            for p in platform {
                opt("--platform", Some(p));
            }
            for a in build_arg {
                opt("--build-arg", Some(a));
            }
            finish(resolve_cmd(
                &stack,
                &context,
                &args,
                target.as_deref(),
                out.as_ref(),
            ))
        }
    }
}

/// `llb-gen lock resolve`: runs `docker buildx build --call lock,format=json` (with `--print`
/// and BUILDX_EXPERIMENTAL=1 on a buildx without `--call`), merges each image's locks
/// (`lock::resolved`), then prints them or writes them to `out`.
fn resolve_cmd(
    stack: &Path,
    context: &Path,
    args: &[String],
    target: Option<&str>,
    out: Option<&PathBuf>,
) -> Result<String, String> {
    use llb_gen::lock::resolved;
    let run = |call: &str| {
        let mut cmd = std::process::Command::new("docker");
        cmd.args(["buildx", "build", "--progress=quiet"]);
        if call == "--print" {
            cmd.env("BUILDX_EXPERIMENTAL", "1");
        }
        cmd.args([call, "lock,format=json"])
            .args(args)
            .arg("-f")
            .arg(stack)
            .arg(context)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("error: cannot run `docker buildx build`: {e}\n"))
    };
    let mut o = run("--call")?;
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    if !o.status.success() && stderr(&o).contains("unknown flag: --call") {
        o = run("--print")?;
    }
    if !o.status.success() {
        return Err(format!(
            "error: `docker buildx build --call lock` for {} failed ({}):\n{}",
            stack.display(),
            o.status,
            stderr(&o)
        ));
    }
    let locks = resolved::parse(&String::from_utf8_lossy(&o.stdout))
        .map_err(|e| format!("error: {e}\n"))?;
    if locks.is_empty() {
        return Ok("no resolve step wrote a lock: the target installs nothing with pip or uv for these platforms, or every such step installs under emulation\n".into());
    }
    let mut text = String::new();
    for (image, locks) in resolved::by_image(&locks, target.unwrap_or("lock")) {
        let name = resolved::merged_file_name(&image);
        let merged = resolved::merge(&image, &locks).map_err(|e| format!("error: {e}\n"))?;
        let what = format!(
            "{name}: {} of `{image}` for {}",
            match resolved::package_count(&merged) {
                1 => "1 package".to_string(),
                n => format!("{n} packages"),
            },
            resolved::platforms(&locks)
        );
        match out {
            None => text.push_str(&format!("# {what}\n{}\n", merged.trim_end())),
            Some(dir) => {
                let path = dir.join(&name);
                std::fs::create_dir_all(dir)
                    .and_then(|_| std::fs::write(&path, &merged))
                    .map_err(|e| format!("error: {}: {e}\n", path.display()))?;
                text.push_str(&format!("wrote {}/{what}\n", dir.display()));
            }
        }
    }
    if out.is_some() {
        text.push_str(
            "install an image from its lock with `lock = \"pylock.IMAGE.toml\"` in place of its pip steps (docs/stack-toml.md §28)\n",
        );
    }
    Ok(text)
}

fn schema_cmd(check: Option<&PathBuf>) -> Result<String, String> {
    let generated = llb_gen::stack::schema::schema_json()?;
    let Some(path) = check else {
        return Ok(generated);
    };
    let committed =
        std::fs::read_to_string(path).map_err(|e| format!("error: {}: {e}", path.display()))?;
    if committed == generated {
        Ok(format!("{} is up to date\n", path.display()))
    } else {
        Err(format!(
            "error: {} differs from the generated schema; run `llb-gen schema > {}`\n",
            path.display(),
            path.display()
        ))
    }
}

/// The stack file: at most [`llb_gen::stack::MAX_FILE_BYTES`] (checked before reading it),
/// UTF-8 (else the line and column of the first bad byte).
fn read(path: &PathBuf) -> Result<SourceFile, String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let limit = llb_gen::stack::MAX_FILE_BYTES;
    let size = std::fs::metadata(path).map_err(err)?.len();
    if size > limit as u64 {
        return Err(format!(
            "{}: the stack file is {size} bytes; the limit is {limit} bytes (split it, or move long scripts and lists into files in the build context)",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(err)?;
    SourceFile::from_bytes(path.display().to_string(), bytes)
}

fn options(b: &BuildArgs, file: &SourceFile) -> Result<BuildOptions, String> {
    let mut o = BuildOptions {
        target: b.target.clone(),
        no_cache: b.no_cache,
        merge: b.merge,
        ..BuildOptions::default()
    };
    if let Some(p) = &b.platform {
        o.platform = Platform::parse(p).map_err(|e| format!("--platform: {e}"))?;
    }
    o.build_platform =
        Platform::parse(&b.build_platform).map_err(|e| format!("--build-platform: {e}"))?;
    let mut args = BTreeMap::new();
    for a in &b.build_args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| format!("--build-arg `{a}`: expected NAME=VALUE"))?;
        args.insert(k.to_string(), v.to_string());
    }
    o.cross_install = !llb_gen::plan::switched_off(&args, "LAYERSTACK_CROSS");
    o.resolve = llb_gen::plan::switched_on(&args, "LAYERSTACK_RESOLVE");
    o.build_args = args;
    for c in &b.build_contexts {
        let bad = |why: String| format!("--build-context `{c}`: {why}");
        let (name, value) = c
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=DIR or NAME=docker-image://REF".into()))?;
        let Some(image) = value.strip_prefix("docker-image:") else {
            // A directory, read by the stack as `NAME:PATH` (with its own .dockerignore).
            if value.contains("://") || value.starts_with("git@") {
                return Err(bad(
                    "only directories and `docker-image://REF` contexts are supported".into(),
                ));
            }
            if !llb_gen::plan::ctxpath::valid_name(name) {
                return Err(bad(format!(
                    "`{name}` is not a name a stack can read a directory context by (letters, digits, `.`, `_`, `-`)"
                )));
            }
            let dir = Path::new(value);
            if !dir.is_dir() {
                return Err(bad(format!("`{value}` is not a directory")));
            }
            let exclude_patterns = std::fs::read_to_string(dir.join(".dockerignore"))
                .map(|t| llb_gen::plan::dockerignore_patterns(&t))
                .unwrap_or_default();
            o.named_contexts.insert(
                name.to_string(),
                ContextOptions {
                    name: name.to_string(),
                    session_id: String::new(),
                    exclude_patterns,
                },
            );
            continue;
        };
        let image = image.strip_prefix("//").unwrap_or(image);
        let from =
            llb_gen::plan::normalize_image_ref(name).map_err(|e| bad(format!("{name}: {e}")))?;
        let to =
            llb_gen::plan::normalize_image_ref(image).map_err(|e| bad(format!("{image}: {e}")))?;
        // A name a stack can read (`copy = { context = "tools", … }`) is also an image
        // context.
        if llb_gen::plan::ctxpath::valid_name(name) {
            o.image_contexts.insert(
                name.to_string(),
                llb_gen::plan::ImageContext::Image(to.clone()),
            );
        }
        o.image_overrides.insert(from, to);
    }
    o.network = match b.network.as_deref() {
        None | Some("default") | Some("sandbox") => Network::Sandbox,
        Some("host") => Network::Host,
        Some("none") => Network::None,
        Some(other) => return Err(format!("--network `{other}`: expected host or none")),
    };
    // The context is the stack file's directory unless `--context` names one; its
    // .dockerignore applies.
    let dir = build_context_dir(b, file)?;
    let ignore = dir.join(".dockerignore");
    let exclude_patterns = std::fs::read_to_string(&ignore)
        .map(|t| llb_gen::plan::dockerignore_patterns(&t))
        .unwrap_or_default();
    o.context = ContextOptions {
        name: "context".into(),
        session_id: String::new(),
        exclude_patterns,
    };
    let named = named_dirs(&b.build_contexts);
    o.requirement_includes = requirement_includes(file, &o, &dir, &named);
    o.lock_files = lock_files(file, &o, &dir, &named);
    Ok(o)
}

/// The directory contexts of `--build-context NAME=DIR` (image contexts left out).
fn named_dirs(build_contexts: &[String]) -> BTreeMap<String, PathBuf> {
    build_contexts
        .iter()
        .filter_map(|c| c.split_once('='))
        .filter(|(_, v)| !v.starts_with("docker-image:"))
        .map(|(n, v)| (n.to_string(), PathBuf::from(v)))
        .collect()
}

/// Where the plan context path `p` is on disk: under the context directory, or under a
/// named context's (`//NAME/PATH`); None for a named context not given.
fn context_file(dir: &Path, named: &BTreeMap<String, PathBuf>, p: &str) -> Option<PathBuf> {
    match llb_gen::plan::ctxpath::split(p) {
        (None, path) => Some(dir.join(path)),
        (Some(n), path) => named.get(n).map(|d| d.join(path)),
    }
}

/// Whether the `.dockerignore` of the context `p` is in leaves it out.
fn ignored(opts: &BuildOptions, p: &str) -> bool {
    let (context, path) = llb_gen::plan::ctxpath::split(p);
    let patterns = match context {
        None => &opts.context.exclude_patterns,
        Some(n) => match opts.named_contexts.get(n) {
            Some(c) => &c.exclude_patterns,
            None => return true,
        },
    };
    report::Ignore::new(patterns).is_ok_and(|i| i.excluded(path))
}

/// The lock files the stack names (`lock = …`), read from the context directories: a file
/// that is missing, not UTF-8 or left out by its context's `.dockerignore` is None (the
/// planner reports it).
fn lock_files(
    file: &SourceFile,
    opts: &BuildOptions,
    dir: &Path,
    named: &BTreeMap<String, PathBuf>,
) -> BTreeMap<String, Option<String>> {
    let Ok((stack, _)) = llb_gen::parse_checked(file) else {
        return Default::default();
    };
    llb_gen::plan::locks::lock_paths(&stack)
        .into_iter()
        .map(|p| {
            let text = if ignored(opts, &p) {
                None
            } else {
                context_file(dir, named, &p).and_then(|f| std::fs::read_to_string(f).ok())
            };
            (p, text)
        })
        .collect()
}

/// `--context DIR`, else the stack file's directory.
fn build_context_dir(b: &BuildArgs, file: &SourceFile) -> Result<PathBuf, String> {
    match &b.context {
        Some(d) if !d.is_dir() => Err(format!("--context `{}` is not a directory", d.display())),
        Some(d) => Ok(d.clone()),
        None => Ok(std::path::Path::new(&file.name)
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default()),
    }
}

/// What the requirements files of every target include (`-r`, `-c`), read from the context
/// directory; a file `.dockerignore` leaves out is not in the context. Nothing when the stack
/// does not parse (`check` reports that).
fn requirement_includes(
    file: &SourceFile,
    opts: &BuildOptions,
    dir: &Path,
    named: &BTreeMap<String, PathBuf>,
) -> llb_gen::plan::includes::RequirementIncludes {
    let Ok((stack, _)) = llb_gen::parse_checked(file) else {
        return Default::default();
    };
    let roots: std::collections::BTreeSet<String> = llb_gen::lint::plans(&stack, opts)
        .iter()
        .flat_map(|p| p.requirement_files())
        .collect();
    if roots.is_empty() {
        return Default::default();
    }
    let roots: Vec<String> = roots.into_iter().collect();
    llb_gen::plan::includes::gather_with(&roots, |p| {
        if ignored(opts, p) {
            return None;
        }
        std::fs::read_to_string(context_file(dir, named, p)?).ok()
    })
}

fn check(path: &PathBuf, b: &BuildArgs) -> ExitCode {
    let file = match read(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = match options(b, &file) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut diags = llb_gen::check(&file, &opts);
    let dir = match build_context_dir(b, &file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    diags.extend(lint_findings(
        &file,
        &opts,
        &dir,
        &named_dirs(&b.build_contexts),
    ));
    let diags = diags.sorted();
    eprint!("{}", diags.render(&file));
    if diags.has_errors() {
        return ExitCode::from(1);
    }
    let warnings = diags
        .items
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    println!(
        "{}: ok ({} targets, {warnings} warnings)",
        file.name,
        targets_count(&file)
    );
    ExitCode::SUCCESS
}

/// The lint rules' findings (`llb_gen::lint`), with facts read from the context directory:
/// requirements files, `.dockerignore`, and the size and `.git`/`.venv`/… of copied
/// directories. Nothing when the stack does not parse (`check` reports that).
fn lint_findings(
    file: &SourceFile,
    opts: &BuildOptions,
    dir: &Path,
    named: &BTreeMap<String, PathBuf>,
) -> llb_gen::diag::Diagnostics {
    use llb_gen::lint;
    let Ok((stack, _)) = llb_gen::parse_checked(file) else {
        return Default::default();
    };
    let plans = lint::plans(&stack, opts);
    let wanted = lint::wanted(&plans);
    let mut facts = lint::Facts {
        dockerignore: !opts.context.exclude_patterns.is_empty(),
        network: opts.network,
        ..Default::default()
    };
    for f in &wanted.files {
        if let Some(Ok(t)) = context_file(dir, named, f).map(std::fs::read_to_string) {
            facts.files.insert(f.clone(), t);
        }
    }
    if !facts.dockerignore {
        // Named contexts have their own .dockerignore: only the main context's copies.
        for src in wanted
            .copies
            .iter()
            .filter(|c| llb_gen::plan::ctxpath::context_of(c).is_none())
        {
            let p = dir.join(src);
            if p.is_dir() {
                let mut d = lint::DirFacts {
                    bytes: Some(0),
                    heavy: vec![],
                };
                walk(&p, Some(""), &mut d);
                facts.dirs.insert(src.clone(), d);
            }
        }
    }
    lint::diagnostics(&lint::lint(&stack, &plans, &facts))
}

/// Add up the sizes under a directory (symlinks not followed) and note heavy directories
/// (`rel` is None inside one: nothing under `.venv` is noted again).
fn walk(p: &Path, rel: Option<&str>, d: &mut llb_gen::lint::DirFacts) {
    let Ok(entries) = std::fs::read_dir(p) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        let name = e.file_name().to_string_lossy().to_string();
        if m.is_dir() {
            let sub = rel.map(|r| {
                if r.is_empty() {
                    name.clone()
                } else {
                    format!("{r}/{name}")
                }
            });
            match sub {
                Some(s) if llb_gen::lint::HEAVY_DIRS.contains(&name.as_str()) => {
                    d.heavy.push(s);
                    walk(&e.path(), None, d);
                }
                sub => walk(&e.path(), sub.as_deref(), d),
            }
        } else {
            d.bytes = d.bytes.map(|b| b + m.len());
        }
    }
    d.heavy.sort();
}

fn targets_count(file: &SourceFile) -> usize {
    llb_gen::stack::parse(file).0.images.len()
}

fn llb(path: &PathBuf, b: &BuildArgs, format: Format) -> ExitCode {
    let run = || -> Result<Vec<u8>, String> {
        let file = read(path)?;
        let opts = options(b, &file)?;
        let (stack, plan) =
            llb_gen::load(&file, &opts).map_err(|e| e.diagnostics.render(&e.file))?;
        if !plan.warnings.items.is_empty() {
            eprint!("{}", plan.warnings.render(&file));
        }
        let twin = llb_gen::twin_plan(&stack, &opts);
        let verdicts = BTreeMap::new();
        let cross = CrossEnv {
            twin: twin.as_ref(),
            verdicts: &verdicts,
            ask: false,
        };
        let out = convert_cross(&plan, &opts, &NoImages, &file, Some(cross))
            .map_err(|d| d.render(&file))?;
        Ok(match format {
            Format::Binary => out.definition.encode_to_vec(),
            Format::Text => llb_gen::llb::dump(&out.definition).into_bytes(),
        })
    };
    match run() {
        Ok(bytes) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(&bytes)
                .and_then(|_| stdout.flush())
                .is_err()
            {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            if !e.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(1)
        }
    }
}

/// Print a report's text, or its error (exit 1).
fn finish(r: Result<String, String>) -> ExitCode {
    match r {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(text.as_bytes())
                .and_then(|_| stdout.flush())
                .is_err()
            {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            if !e.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(1)
        }
    }
}

/// Parse a stack; parse errors (with the stack-wide checks) are rendered.
fn parse_stack(file: &SourceFile) -> Result<Stack, String> {
    let (stack, diags) = llb_gen::parse_checked(file).map_err(|e| e.diagnostics.render(file))?;
    if !diags.items.is_empty() {
        eprint!("{}", diags.render(file));
    }
    Ok(stack)
}

fn report_error(e: report::Error, file: &SourceFile) -> String {
    match e {
        report::Error::Stack(d) => d.render(file),
        report::Error::Context(msg) => format!("error: {msg}\n"),
    }
}

fn warn(d: &llb_gen::diag::Diagnostics, file: &SourceFile) {
    if !d.items.is_empty() {
        eprint!("{}", d.render(file));
    }
}

fn plan_cmd(path: &PathBuf, b: &BuildArgs) -> Result<String, String> {
    let file = read(path)?;
    let opts = options(b, &file)?;
    let stack = parse_stack(&file)?;
    // The whole stack, to tell which services use each layer (and to show it without --target).
    let all = report::plan_all(&stack, &opts);
    match &b.target {
        None => {
            let all = all.map_err(|d| d.render(&file))?;
            warn(&all.warnings, &file);
            Ok(report::tree::render(
                &stack,
                &all.images,
                &all.images,
                &opts.platform,
                None,
            ))
        }
        Some(t) => {
            let shown = report::plan_target(&stack, &opts).map_err(|d| d.render(&file))?;
            warn(&shown.warnings, &file);
            // Images of other targets that do not plan are left out of the usage counts.
            let all = match all {
                Ok(a) => a.images,
                Err(_) => stack
                    .images
                    .iter()
                    .filter_map(|i| {
                        let o = BuildOptions {
                            target: Some(i.name.value.clone()),
                            ..opts.clone()
                        };
                        llb_gen::plan::plan(&stack, &o).ok()?.images.pop()
                    })
                    .collect(),
            };
            Ok(report::tree::render(
                &stack,
                &shown.images,
                &all,
                &opts.platform,
                Some(t),
            ))
        }
    }
}

fn graph_cmd(path: &PathBuf, b: &BuildArgs, format: GraphFormat) -> Result<String, String> {
    let file = read(path)?;
    let opts = options(b, &file)?;
    let stack = parse_stack(&file)?;
    let planned = match &b.target {
        None => report::plan_all(&stack, &opts),
        Some(_) => report::plan_target(&stack, &opts),
    }
    .map_err(|d| d.render(&file))?;
    warn(&planned.warnings, &file);
    let title = stack
        .name
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "stack".into())
        });
    Ok(report::graph::render(
        &planned.images,
        &title,
        match format {
            GraphFormat::Dot => report::graph::Format::Dot,
            GraphFormat::Mermaid => report::graph::Format::Mermaid,
        },
    ))
}

/// The stack file's directory, `.` for a bare file name.
fn stack_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What `hash` and `bake` share: the stack, build options, platforms, the context and its
/// `.dockerignore`.
struct Setup {
    file: SourceFile,
    stack: Stack,
    opts: BuildOptions,
    platforms: Vec<Platform>,
    context_dir: PathBuf,
    ctx: FsContext,
    ignore: report::Ignore,
    /// `--build-context NAME=DIR`: each directory with its own `.dockerignore`.
    named: Vec<(String, FsContext, report::Ignore)>,
}

impl Setup {
    fn named(&self) -> report::NamedContexts<'_> {
        self.named
            .iter()
            .map(|(n, c, i)| (n.clone(), (c as &dyn report::Context, i)))
            .collect()
    }
}

fn setup(path: &PathBuf, c: &ContextArgs) -> Result<Setup, String> {
    let file = read(path)?;
    let b = BuildArgs {
        target: None,
        platform: None,
        build_args: c.build_args.clone(),
        build_contexts: c.build_contexts.clone(),
        network: None,
        no_cache: false,
        merge: false,
        build_platform: "linux/amd64".into(),
        context: c.context.clone(),
    };
    let opts = options(&b, &file)?;
    let stack = parse_stack(&file)?;
    let platforms = report::platforms(&stack, &c.platform).map_err(|d| d.render(&file))?;
    let context_dir = c.context.clone().unwrap_or_else(|| stack_dir(path));
    if !context_dir.is_dir() {
        return Err(format!(
            "error: context `{}` is not a directory\n",
            context_dir.display()
        ));
    }
    let ignore_text = match std::fs::read_to_string(context_dir.join(".dockerignore")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(format!(
                "error: {}/.dockerignore: {e}\n",
                context_dir.display()
            ));
        }
    };
    let ignore = report::Ignore::new(&llb_gen::plan::dockerignore_patterns(&ignore_text))
        .map_err(|e| format!("error: {}/.dockerignore: {e}\n", context_dir.display()))?;
    let mut named = vec![];
    for (n, dir) in named_dirs(&c.build_contexts) {
        let patterns = &opts.named_contexts[&n].exclude_patterns;
        let ig = report::Ignore::new(patterns)
            .map_err(|e| format!("error: {}/.dockerignore: {e}\n", dir.display()))?;
        named.push((n, FsContext { root: dir }, ig));
    }
    Ok(Setup {
        named,
        ctx: FsContext {
            root: context_dir.clone(),
        },
        file,
        stack,
        opts,
        platforms,
        context_dir,
        ignore,
    })
}

fn hash_cmd(
    path: &PathBuf,
    layer: &str,
    c: &ContextArgs,
    full: bool,
    json: bool,
) -> Result<String, String> {
    let s = setup(path, c)?;
    if s.stack.image(layer).is_none() {
        let names: Vec<&str> = s
            .stack
            .images
            .iter()
            .map(|i| i.name.value.as_str())
            .collect();
        let mut msg = format!(
            "error: `{layer}` is not a layer or service of {}\n",
            s.file.name
        );
        if let Some(m) = llb_gen::diag::did_you_mean(layer, names.iter().copied()) {
            msg.push_str(&format!("  = help: did you mean `{m}`?\n"));
        }
        msg.push_str(&format!(
            "  = help: {}\n",
            llb_gen::plan::valid_targets_hint(&s.stack)
        ));
        return Err(msg);
    }
    let h = report::hash_image_with(
        &s.stack,
        &s.opts,
        &s.platforms,
        layer,
        &s.ctx,
        &s.ignore,
        &s.named(),
    )
    .map_err(|e| report_error(e, &s.file))?;
    Ok(if json {
        let mut t = serde_json::to_string_pretty(&h.to_json(full)).expect("JSON values");
        t.push('\n');
        t
    } else if full {
        format!("{}\n", h.digest)
    } else {
        format!("{}\n", h.short())
    })
}

fn bake_cmd(
    path: &PathBuf,
    c: &ContextArgs,
    network: Option<&str>,
    format: BakeFileFormat,
) -> Result<String, String> {
    let network = match network {
        None | Some("default") | Some("sandbox") => None,
        Some(n @ ("host" | "none")) => Some(n.to_string()),
        Some(other) => return Err(format!("--network `{other}`: expected host or none")),
    };
    let s = setup(path, c)?;
    let abs = |p: &Path| {
        std::fs::canonicalize(p)
            .map_err(|e| format!("error: {}: {e}\n", p.display()))
            .map(|p| p.to_string_lossy().to_string())
    };
    let dockerfile = report::bake::relative_path(&abs(&s.context_dir)?, &abs(path)?);
    let platforms = if c.platform.is_empty() && s.stack.platforms.is_empty() {
        vec![]
    } else {
        s.platforms.iter().map(|p| p.id()).collect()
    };
    let options = report::bake::BakeOptions {
        context: s.context_dir.to_string_lossy().to_string(),
        dockerfile,
        platforms,
        network,
        format: match format {
            BakeFileFormat::Json => report::bake::BakeFormat::Json,
            BakeFileFormat::Compose => report::bake::BakeFormat::Compose,
        },
        contexts: named_dirs(&c.build_contexts)
            .into_iter()
            .map(|(n, d)| (n, d.to_string_lossy().to_string()))
            .collect(),
    };
    let file = report::bake_file_with(
        &s.stack,
        &s.opts,
        &s.platforms,
        &options,
        &s.ctx,
        &s.ignore,
        &s.named(),
    )
    .map_err(|e| report_error(e, &s.file))?;
    if let (Some(n), BakeFileFormat::Json) = (&options.network, format) {
        eprint!("{}", bake_network_warning(n));
    }
    Ok(file)
}

/// What `llb-gen bake --network N` says on stderr: which buildx honours `network` in a bake
/// file, and the compose file that older ones honour (this command line with `--format
/// compose`).
fn bake_network_warning(network: &str) -> String {
    let mut again = vec!["llb-gen".to_string()];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--format" {
            args.next();
        } else if !a.starts_with("--format=") {
            again.push(shell_word(&a));
        }
    }
    again.push("--format compose".into());
    let allow = if network == "host" {
        "; with a newer one, run `docker buildx bake --allow network.host`"
    } else {
        ""
    };
    format!(
        "warning: buildx before {min} ignores `network` in a bake file: RUN steps get the \
         default network, and `--set '*.network={network}'` fails with `unknown key: network` \
         (see `docker buildx version`{allow})\n  \
         = help: for an older buildx, also write the targets as a compose file, whose \
         `build.network` it honours, and bake both files (the groups come from the JSON file):\n      \
         {again} > docker-bake.network.yml\n      \
         docker buildx bake -f docker-bake.json -f docker-bake.network.yml\n",
        min = report::bake::BUILDX_BAKE_NETWORK,
        again = again.join(" "),
    )
}

/// `s` as one shell word: as it is when it has only safe characters, else single-quoted.
fn shell_word(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The build context on disk, for hashes.
struct FsContext {
    root: PathBuf,
}

impl FsContext {
    fn path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }
}

impl report::Context for FsContext {
    fn stat(&self, rel: &str) -> Result<report::Entry, String> {
        let p = self.path(rel);
        let m = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(report::Entry::Missing);
            }
            Err(e) => return Err(format!("{}: {e}", p.display())),
        };
        let t = m.file_type();
        Ok(if t.is_dir() {
            report::Entry::Dir
        } else if t.is_symlink() {
            let target = std::fs::read_link(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            report::Entry::Symlink {
                target: target.to_string_lossy().to_string(),
            }
        } else if t.is_file() {
            report::Entry::File {
                executable: is_executable(&m),
            }
        } else {
            // Sockets, fifos, devices: not something a build copies.
            report::Entry::Missing
        })
    }

    fn list(&self, rel: &str) -> Result<Vec<String>, String> {
        let p = self.path(rel);
        let mut out = vec![];
        for e in std::fs::read_dir(&p).map_err(|e| format!("{}: {e}", p.display()))? {
            let e = e.map_err(|e| format!("{}: {e}", p.display()))?;
            match e.file_name().into_string() {
                Ok(n) => out.push(n),
                Err(n) => {
                    return Err(format!("{}: file name {n:?} is not UTF-8", p.display()));
                }
            }
        }
        Ok(out)
    }

    fn sha256(&self, rel: &str) -> Result<String, String> {
        use sha2::{Digest, Sha256};
        use std::io::Read;
        let p = self.path(rel);
        let mut f = std::fs::File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex::encode(h.finalize()))
    }
}

#[cfg(unix)]
fn is_executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

/// `llb-gen targets`: services, layers, variants and how to pick them.
fn targets_cmd(path: &PathBuf) -> Result<String, String> {
    let file = read(path)?;
    let (stack, _) = llb_gen::parse_checked(&file).map_err(|e| e.diagnostics.render(&file))?;
    let targets = llb_gen::report::targets::list(&stack);
    let mut out = String::new();
    let width = targets
        .iter()
        .filter(|t| t.variant.is_none())
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0)
        .max(6);
    for t in targets.iter().filter(|t| t.variant.is_none()) {
        let mut mark = if t.default { " (default)" } else { "" }.to_string();
        if t.build_only {
            mark.push_str(" (build-only)");
        }
        out.push_str(&format!(
            "{:<width$}  {:<7}  {}{mark}\n",
            t.name,
            t.kind.as_str(),
            t.description
        ));
    }
    let variants = llb_gen::report::targets::variants(&stack);
    if !variants.is_empty() {
        out.push_str(
            "\nvariants (pick one with --target NAME@VARIANT; without one: the default):\n",
        );
        for v in &variants {
            let torch = v
                .torch
                .as_ref()
                .map(|t| format!(", torch {t}"))
                .unwrap_or_default();
            let mark = if v.default { " (default)" } else { "" };
            let desc = v
                .description
                .as_ref()
                .map(|d| format!(" — {d}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {}{mark}: platforms {}{torch}{desc}\n",
                v.name,
                if v.platforms.is_empty() {
                    "any".to_string()
                } else {
                    v.platforms.join(", ")
                }
            ));
        }
        if let Some(first) = stack.services().next() {
            let v = &variants[variants.len() - 1].name;
            out.push_str(&format!(
                "  e.g. docker buildx build -f {} --target {}@{v} .\n",
                file.name, first.name.value
            ));
        }
    }
    Ok(out)
}
