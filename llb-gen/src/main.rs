//! `llb-gen`: check a stack and print its LLB (binary for `buildctl build`, or a readable dump).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use prost::Message;

use llb_gen::convert::{NoImages, convert};
use llb_gen::diag::Severity;
use llb_gen::plan::{BuildOptions, ContextOptions, Network};
use llb_gen::platform::Platform;
use llb_gen::source::SourceFile;

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
    /// `host` or `none`: the network of RUN steps.
    #[arg(long)]
    network: Option<String>,
    /// Ignore the build cache for every step.
    #[arg(long)]
    no_cache: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Check { stack, build } => check(&stack, &build),
        Cmd::Llb {
            stack,
            build,
            format,
        } => llb(&stack, &build, format),
    }
}

fn read(path: &PathBuf) -> Result<SourceFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(SourceFile::new(path.display().to_string(), text))
}

fn options(b: &BuildArgs, file: &SourceFile) -> Result<BuildOptions, String> {
    let mut o = BuildOptions {
        target: b.target.clone(),
        no_cache: b.no_cache,
        ..BuildOptions::default()
    };
    if let Some(p) = &b.platform {
        o.platform = Platform::parse(p).map_err(|e| format!("--platform: {e}"))?;
    }
    let mut args = BTreeMap::new();
    for a in &b.build_args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| format!("--build-arg `{a}`: expected NAME=VALUE"))?;
        args.insert(k.to_string(), v.to_string());
    }
    o.build_args = args;
    o.network = match b.network.as_deref() {
        None | Some("default") | Some("sandbox") => Network::Sandbox,
        Some("host") => Network::Host,
        Some("none") => Network::None,
        Some(other) => return Err(format!("--network `{other}`: expected host or none")),
    };
    // The context's .dockerignore sits beside the stack file's directory by default.
    let dir = std::path::Path::new(&file.name)
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let ignore = dir.join(".dockerignore");
    let exclude_patterns = std::fs::read_to_string(&ignore)
        .map(|t| llb_gen::plan::dockerignore_patterns(&t))
        .unwrap_or_default();
    o.context = ContextOptions {
        name: "context".into(),
        session_id: String::new(),
        exclude_patterns,
    };
    Ok(o)
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
    let diags = llb_gen::check(&file, &opts);
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

fn targets_count(file: &SourceFile) -> usize {
    llb_gen::stack::parse(file).0.images.len()
}

fn llb(path: &PathBuf, b: &BuildArgs, format: Format) -> ExitCode {
    let run = || -> Result<Vec<u8>, String> {
        let file = read(path)?;
        let opts = options(b, &file)?;
        let (_, plan) = llb_gen::load(&file, &opts).map_err(|e| e.diagnostics.render(&e.file))?;
        if !plan.warnings.items.is_empty() {
            eprint!("{}", plan.warnings.render(&file));
        }
        let out = convert(&plan, &opts, &NoImages, &file).map_err(|d| d.render(&file))?;
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
