//! Test harness for end-to-end builds against a real engine.
//!
//! The engine is whichever private dockerd `DOCKER_HOST` names: the current Docker
//! of `scripts/engine-current.sh` (Debian unstable's dockerd 28, containerd 2.1,
//! buildx 0.29; what `scripts/test.sh` uses), dockerd 26.1 of `scripts/engine.sh`
//! (BuildKit v0.13.2, buildx 0.13.1; `scripts/test-26.sh`), both with the containerd
//! image store, or dockerd 20.10 of `scripts/engine-old.sh`; see docs/engines.md.
//! The base images are the local ones `scripts/base-images.sh` makes. A test starts
//! with [`engine_or_skip`]:
//!
//! ```no_run
//! use integration_tests::{engine_or_skip, Context};
//!
//! fn builds() { // in tests/*.rs, with #[test]
//!     let Some(engine) = engine_or_skip("builds") else { return };
//!     let ctx = Context::new().file("Dockerfile", "FROM debian:bookworm-slim\n");
//!     let tag = engine.unique_tag("builds");
//!     let build = engine.buildx_build(&["--network=host", "-t", &tag, ctx.path_str()]);
//!     assert!(build.progress.errors().is_empty());
//!     let _ = engine.docker_run(&tag, &["true"]);
//! }
//! ```
//!
//! Finding the engine: `DOCKER_HOST` must be set (`eval "$(scripts/engine.sh)"`)
//! and `docker version` must answer. Without one, a test is skipped with a loud
//! `SKIPPED: no engine` line on stderr — except under `CI=true`, where a missing
//! engine is a failure and the test panics.
//!
//! Things to know about the engine (see `scripts/engine.sh`):
//! - RUN steps reach PyPI and Debian only with `--network=host`; the default
//!   (sandbox) network reaches nothing beyond this machine, and pip then retries
//!   for about a minute before failing.
//! - With buildx's docker driver the result is loaded into the image store
//!   whether or not `--load` is given; without `-t` it is stored dangling.
//! - buildx (0.13 and 0.29) adds a provenance attestation by default, so the image
//!   id of a built tag is an OCI index digest; pass `--provenance=false` for a plain
//!   manifest.
//! - Subrequests: buildx 0.29 has only `--call`, buildx 0.13 only the experimental
//!   `--print`; [`Engine::subrequest`] picks the one the engine's buildx has.
//! - `--progress=rawjson` works (buildx 0.13.1 does not list it in `--help`):
//!   pretty-printed JSON objects, one after another, on stderr; see
//!   [`Progress::parse`].

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod builder;
pub mod conda;
pub mod deb;
mod frontend;
pub mod http;
pub mod pyindex;
pub use frontend::ensure_frontend;

/// Default limit for one command (a build, a run); override with
/// `LAYERSTACK_TEST_TIMEOUT` (seconds).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// The frontend image tests build with (`# syntax=` line); override with
/// `LAYERSTACK_FRONTEND_IMAGE`.
pub const DEFAULT_FRONTEND_IMAGE: &str = "layerstack:dev";

// ------------------------------------------------------------------ engine --

/// A docker engine that answered `docker version`.
#[derive(Debug, Clone)]
pub struct Engine {
    /// `DOCKER_HOST` as found in the environment.
    pub host: String,
    /// The server version it reported, e.g. `26.1.5+dfsg1`.
    pub server_version: String,
}

/// Finds the engine once per test binary: `Ok` when `DOCKER_HOST` is set and
/// `docker version` answers, else `Err(reason)`.
pub fn engine() -> Result<&'static Engine, &'static str> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE.get_or_init(detect).as_ref().map_err(String::as_str)
}

fn detect() -> Result<Engine, String> {
    let host = match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => h,
        _ => {
            return Err("DOCKER_HOST is not set (run: eval \"$(scripts/engine.sh)\")".into());
        }
    };
    let mut cmd = Command::new("docker");
    cmd.args(["version", "--format", "{{.Server.Version}}"]);
    let out = match exec(&mut cmd, Some(Duration::from_secs(30))) {
        Ok(out) => out,
        Err(e) => return Err(format!("cannot run docker: {e}")),
    };
    if !out.status.success() || out.stdout.trim().is_empty() {
        return Err(format!(
            "docker version failed on DOCKER_HOST={host}: {}",
            out.stderr.trim()
        ));
    }
    Ok(Engine {
        host,
        server_version: out.stdout.trim().to_string(),
    })
}

/// The engine, or `None` after printing `SKIPPED: no engine` to stderr.
/// Under `CI=true` a missing engine panics instead: CI must run these tests.
pub fn engine_or_skip(test: &str) -> Option<&'static Engine> {
    match engine() {
        Ok(engine) => Some(engine),
        Err(reason) if is_ci() => panic!(
            "no container engine under CI=true ({reason}); .ci/run must \
             `eval \"$(scripts/engine.sh)\"` and run scripts/base-images.sh before cargo test"
        ),
        Err(reason) => {
            eprintln!("\n*** SKIPPED: no engine: {test}: {reason} ***\n");
            None
        }
    }
}

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The engine with the frontend image built and loaded (once per test binary), or `None`
/// after `SKIPPED` (never under CI): what every test that builds a stack starts with.
pub fn engine_with_frontend(test: &str) -> Option<&'static Engine> {
    let engine = engine_or_skip(test)?;
    ensure_frontend(engine);
    Some(engine)
}

/// The frontend image name tests use in `# syntax=` lines.
pub fn frontend_image() -> String {
    std::env::var("LAYERSTACK_FRONTEND_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_FRONTEND_IMAGE.to_string())
}

/// The workspace root (for `examples/`, `scripts/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests has a parent directory")
        .to_path_buf()
}

impl Engine {
    /// `docker` with the given arguments (the environment, DOCKER_HOST
    /// included, is inherited).
    pub fn docker<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("docker");
        cmd.args(args);
        cmd
    }

    /// Runs `docker buildx build --progress=rawjson ARGS` (no `--progress` is
    /// added if ARGS has one) and panics with the failing steps' logs unless it
    /// succeeds. Add `--network=host` when RUN steps need PyPI or Debian.
    pub fn buildx_build(&self, args: &[&str]) -> Build {
        match self.try_buildx_build(args) {
            Ok(build) => build,
            Err(build) => panic!("{}", build.failure_report()),
        }
    }

    /// Like [`Engine::buildx_build`] but returns a failed build as `Err` (for
    /// tests that expect an error).
    pub fn try_buildx_build(&self, args: &[&str]) -> Result<Build, Box<Build>> {
        let mut full: Vec<String> = vec!["buildx".into(), "build".into()];
        if !args
            .iter()
            .any(|a| *a == "--progress" || a.starts_with("--progress="))
        {
            full.push("--progress=rawjson".into());
        }
        // `LAYERSTACK_BUILDER`, `LAYERSTACK_FRONTEND_IMAGE`: see the builder module.
        full.extend(builder::adjust(args));
        let attempt = || {
            let mut cmd = self.docker(&full);
            let output = exec(&mut cmd, Some(timeout()))
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", display_command(&cmd)));
            Build {
                command: display_command(&cmd),
                progress: Progress::parse(&output.stderr),
                output,
            }
        };
        let build = attempt();
        if build.output.status.success() {
            return Ok(build);
        }
        if build.lost_a_snapshot_while_unpacking() {
            // The engine's race, not the build's: every step finished and the image store
            // lost a layer's parent snapshot while unpacking the result (moby/buildkit#6521,
            // containerd's snapshotter with exports in parallel). Export again, once; what
            // ran is what the first attempt ran (the retry answers its steps from the cache).
            eprintln!(
                "note: the engine lost a parent snapshot while unpacking the image (moby/buildkit#6521); exporting again:\n  {}",
                build.command
            );
            let again = attempt();
            if again.output.status.success() {
                let mut progress = build.progress;
                progress.vertices.retain(|v| v.error.is_none());
                progress
                    .vertices
                    .extend(again.progress.vertices.into_iter().filter(|v| {
                        v.name.starts_with("exporting") || v.name.starts_with("unpacking")
                    }));
                return Ok(Build {
                    command: again.command,
                    output: again.output,
                    progress,
                });
            }
            return Err(Box::new(again));
        }
        Err(Box::new(build))
    }

    /// `docker image inspect NAME`, the single object (not the array).
    pub fn image_inspect(&self, name: &str) -> Value {
        let out = run(self.docker(["image", "inspect", name]));
        let mut v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "docker image inspect {name}: bad JSON ({e}):\n{}",
                out.stdout
            )
        });
        match v.get_mut(0) {
            Some(first) => first.take(),
            None => panic!("docker image inspect {name}: empty answer"),
        }
    }

    /// Whether an image of that name exists locally.
    pub fn image_exists(&self, name: &str) -> bool {
        let mut cmd = self.docker(["image", "inspect", "--format", "{{.Id}}", name]);
        exec(&mut cmd, Some(Duration::from_secs(60))).is_ok_and(|o| o.status.success())
    }

    /// `docker run --rm --pull=never --network=none IMAGE ARGS…`; returns stdout,
    /// panics (showing stdout and stderr) on a non-zero exit.
    pub fn docker_run(&self, image: &str, args: &[&str]) -> String {
        self.docker_run_with(&["--network=none"], image, args)
    }

    /// The `X.Y` of `python3` in `image`. The local `python:3.12-slim` is Debian's, which may
    /// not be 3.12: a lock's `python-version` must match what installs the wheels.
    pub fn python_version(&self, image: &str) -> String {
        self.docker_run(
            image,
            &[
                "python3",
                "-c",
                "import sys; print('%d.%d' % sys.version_info[:2])",
            ],
        )
        .trim()
        .to_string()
    }

    /// `docker buildx bake --progress=rawjson ARGS` in `cwd`, whatever its exit status.
    pub fn buildx_bake(&self, args: &[&str], cwd: &Path) -> Output {
        let mut cmd = self.docker(["buildx", "bake", "--progress=rawjson"]);
        cmd.args(args).current_dir(cwd);
        exec(&mut cmd, None).expect("docker buildx bake runs")
    }

    /// `docker run --rm --pull=never OPTIONS IMAGE ARGS…`; returns stdout.
    /// `--pull=never` makes a missing image an immediate, clear error.
    pub fn docker_run_with(&self, options: &[&str], image: &str, args: &[&str]) -> String {
        let mut cmd = self.docker(["run", "--rm", "--pull=never"]);
        cmd.args(options).arg(image).args(args);
        run(cmd).stdout
    }

    /// True on an old engine: dockerd before 23, i.e. `scripts/engine-old.sh`'s Debian
    /// bookworm dockerd 20.10 with its embedded BuildKit v0.8 and the legacy (graphdriver)
    /// image store. There: no `mergeop`/`diffop` caps, no `exec.secretenv`, no `Warn` RPC; buildx
    /// refuses multi-platform builds and the OCI exporter (docker driver without the containerd
    /// store); an image name holds one platform (no arm64 base images); and dockerd 20.10 does
    /// not pass error details to the client, so buildx shows no stack.toml excerpts. Tests
    /// branch on this to assert the fallback or the clear failure instead (see
    /// docs/old-engines.md). Detected from the server version, so it cannot go stale;
    /// `LAYERSTACK_ENGINE=old` (which engine-old.sh exports) is not consulted.
    pub fn is_old(&self) -> bool {
        server_major(&self.server_version).is_some_and(|major| major < 23)
    }

    /// `docker buildx build` asking the frontend for the subrequest `WHAT` (`targets`,
    /// `outline`, `check`, …) instead of a build: `--call WHAT` where buildx has it (0.14 and
    /// later, e.g. the current Docker's 0.29), else buildx 0.13's experimental `--print WHAT`
    /// (with `BUILDX_EXPERIMENTAL=1`). Which one is read once from `docker buildx build
    /// --help`, so it follows the buildx in use rather than a version number. The caller adds
    /// `-f`, the context and any other flags.
    pub fn subrequest(&self, what: &str) -> Command {
        let mut cmd = self.docker(["buildx", "build"]);
        if buildx_has_call(self) {
            cmd.args(["--call", what]);
        } else {
            cmd.args(["--print", what]).env("BUILDX_EXPERIMENTAL", "1");
        }
        cmd
    }

    /// A tag no other test (or test run) uses: `layerstack-test/NAME:PID-N`.
    pub fn unique_tag(&self, name: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        format!("layerstack-test/{name}:{}-{n}", std::process::id())
    }

    /// Removes an image tag; ignores "no such image".
    pub fn remove_image(&self, name: &str) {
        let mut cmd = self.docker(["image", "rm", "--force", name]);
        let _ = exec(&mut cmd, Some(Duration::from_secs(120)));
    }

    /// The buildx version as (major, minor): `github.com/docker/buildx 0.13.1+ds1 …` → (0, 13).
    /// Flags come and go with it (bake's `--allow` entitlements need 0.17).
    pub fn buildx_version(&self) -> (u32, u32) {
        let out = run(self.docker(["buildx", "version"])).stdout;
        let v = out.split_whitespace().nth(1).unwrap_or_default();
        let mut parts = v
            .trim_start_matches('v')
            .split(['.', '+', '-'])
            .map(|p| p.parse::<u32>());
        match (parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor))) => (major, minor),
            _ => panic!("buildx version: {out}"),
        }
    }

    /// A guard that removes these image tags when it is dropped, also when the test panics
    /// half-way: tests that tag many images (the load tests tag a hundred) must not leave them
    /// behind on a machine whose disk CI shares.
    pub fn tagged(&self, tags: impl IntoIterator<Item = String>) -> Tagged<'_> {
        Tagged {
            engine: self,
            tags: tags.into_iter().collect(),
        }
    }

    /// Builds one target of the stack `DIR/stack.toml` the way its README does, with `DIR` as
    /// the context: `docker buildx build --network=host -f DIR/stack.toml --target TARGET
    /// [EXTRA…] -t TAG DIR` (`EXTRA`: `--platform`, `--build-arg`, …), under a fresh tag
    /// ([`Engine::unique_tag`] of `LABEL-TARGET`). Says on stderr how long it took
    /// (`LABEL: built --target TARGET EXTRA… in 12.3s`) and panics with the failing steps'
    /// logs unless it succeeds. Returns the tag and the build; the caller removes the image.
    pub fn build_target(
        &self,
        label: &str,
        dir: &Path,
        target: &str,
        extra: &[&str],
    ) -> (String, Build) {
        let tag = self.unique_tag(&format!("{label}-{target}"));
        let stack = dir.join("stack.toml").to_string_lossy().into_owned();
        let context = dir.to_string_lossy().into_owned();
        let mut args = vec!["--network=host", "-f", &stack, "--target", target];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-t", &tag, &context]);
        let t0 = Instant::now();
        let build = self.buildx_build(&args);
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" {}", extra.join(" "))
        };
        eprintln!(
            "{label}: built --target {target}{extra} in {:.1}s",
            t0.elapsed().as_secs_f64()
        );
        (tag, build)
    }

    /// `docker run --rm --pull=never OPTIONS IMAGE ARGS…` for a command that prints one JSON
    /// value (the examples' `--once` and `info` commands); panics with the output unless it
    /// exits 0 and prints JSON.
    pub fn run_json(&self, options: &[&str], image: &str, args: &[&str]) -> Value {
        let out = self.docker_run_with(options, image, args);
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("{image} {args:?}: expected one JSON value ({e}):\n{out}"))
    }
}

/// Whether this engine's buildx has `--call` (0.14+); buildx 0.13 has only the experimental
/// `--print`, and buildx 0.29 has only `--call`. Read once from `docker buildx build --help`.
fn buildx_has_call(engine: &Engine) -> bool {
    static HAS_CALL: OnceLock<bool> = OnceLock::new();
    *HAS_CALL.get_or_init(|| {
        let mut cmd = engine.docker(["buildx", "build", "--help"]);
        cmd.env("BUILDX_EXPERIMENTAL", "1");
        let out = exec(&mut cmd, Some(Duration::from_secs(60)))
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", display_command(&cmd)));
        help_has_flag(&out.stdout, "--call")
    })
}

/// Whether a `--help` text lists FLAG as an option (`      --call string   …`).
fn help_has_flag(help: &str, flag: &str) -> bool {
    help.lines().any(|l| {
        l.split_whitespace()
            .find(|w| w.starts_with("--"))
            .is_some_and(|w| w.trim_end_matches(',') == flag)
    })
}

/// A string no other test run has (`PID-NANOS`): put into a RUN step or a file, it makes the
/// step new to the build cache, so the test sees it run.
pub fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

/// The major version of a dockerd version string (`20.10.24+dfsg1` → 20).
fn server_major(version: &str) -> Option<u32> {
    version.split(['.', '+', '-']).next()?.trim().parse().ok()
}

fn timeout() -> Duration {
    std::env::var("LAYERSTACK_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT)
}

// ---------------------------------------------------------------- commands --

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to completion (default timeout), panicking with the command
/// line, exit status, stdout and stderr unless it exits 0.
pub fn run(mut cmd: Command) -> Output {
    let out = exec(&mut cmd, Some(timeout()))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", display_command(&cmd)));
    if !out.status.success() {
        panic!(
            "command failed ({}): {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            display_command(&cmd),
            out.stdout.trim_end(),
            out.stderr.trim_end()
        );
    }
    out
}

/// `cargo run -q -p llb-gen -- ARGS` in `cwd`, which must succeed: its stdout and stderr.
pub fn llb_gen_output(args: &[&str], cwd: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "-q", "--manifest-path"])
        .arg(repo_root().join("Cargo.toml"))
        .args(["-p", "llb-gen", "--"])
        .args(args)
        .current_dir(cwd);
    run(cmd)
}

/// [`llb_gen_output`]'s stdout.
pub fn llb_gen(args: &[&str], cwd: &Path) -> String {
    llb_gen_output(args, cwd).stdout
}

/// Runs a command to completion and returns its output whatever the exit
/// status. `Err` only when it cannot be started or hits the timeout.
pub fn exec(cmd: &mut Command, limit: Option<Duration>) -> Result<Output, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    // Drain both pipes on threads so a chatty child never blocks.
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if limit.is_some_and(|l| start.elapsed() > l) => {
                let _ = child.kill();
                let _ = child.wait();
                let stdout =
                    String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
                let stderr =
                    String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
                return Err(format!(
                    "timed out after {:?}: {}\n--- stdout ---\n{}\n--- stderr (tail) ---\n{}",
                    limit.unwrap_or_default(),
                    display_command(cmd),
                    tail(&stdout, 40),
                    tail(&stderr, 80)
                ));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// `prog arg arg…`, quoting arguments with spaces, for messages.
pub fn display_command(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(char::is_whitespace) {
            let _ = write!(s, " '{a}'");
        } else {
            let _ = write!(s, " {a}");
        }
    }
    s
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

// ----------------------------------------------------------------- context --

/// A build context in a temporary directory, removed on drop.
pub struct Context {
    dir: tempfile::TempDir,
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Context {
    pub fn new() -> Self {
        Context {
            dir: tempfile::Builder::new()
                .prefix("layerstack-it-")
                .tempdir()
                .expect("create a temporary build context"),
        }
    }

    /// Writes a file (creating parent directories); chainable.
    pub fn file(self, rel: &str, contents: &str) -> Self {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create directories in the build context");
        }
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The path as `&str`, for argument lists.
    pub fn path_str(&self) -> &str {
        self.dir.path().to_str().expect("temporary paths are UTF-8")
    }

    /// The path of a file inside the context, as `String` (for `-f`).
    pub fn join(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_string_lossy().into_owned()
    }
}

/// Copies the directory tree `from` into `to` (created), leaving out `__pycache__`: for tests
/// that build an edited copy of an example. Symlinks are copied as the files they point to.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    for e in entries {
        let e = e.unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        if e.file_name() == "__pycache__" {
            continue;
        }
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst)
                .unwrap_or_else(|err| panic!("copy {} → {}: {err}", src.display(), dst.display()));
        }
    }
}

// ------------------------------------------------------------------ builds --

/// A finished `docker buildx build`.
#[derive(Debug, Clone)]
pub struct Build {
    /// The command line, for messages.
    pub command: String,
    pub output: Output,
    /// Parsed `--progress=rawjson` (empty for other progress modes).
    pub progress: Progress,
}

impl Build {
    /// The build failed only in the image store's unpack with containerd's "parent snapshot
    /// … does not exist" (moby/buildkit#6521): every other step finished without error.
    pub fn lost_a_snapshot_while_unpacking(&self) -> bool {
        let text = &self.output.stderr;
        let signature = text.contains("failed to prepare extraction snapshot")
            && text.contains("parent snapshot")
            && text.contains("does not exist");
        let failed: Vec<&Vertex> = self
            .progress
            .vertices
            .iter()
            .filter(|v| v.error.is_some())
            .collect();
        signature
            && !failed.is_empty()
            && failed
                .iter()
                .all(|v| v.name.starts_with("exporting to") || v.name.starts_with("unpacking"))
    }

    pub fn success(&self) -> bool {
        self.output.status.success()
    }

    /// The last `ERROR: …` line buildx printed (the user-facing error), if any.
    pub fn error_line(&self) -> Option<&str> {
        self.output
            .stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("ERROR:"))
            .map(str::trim)
    }

    /// Shortcut for `self.progress.vertex(name_contains)`.
    pub fn vertex(&self, name_contains: &str) -> Option<&Vertex> {
        self.progress.vertex(name_contains)
    }

    /// Panics, listing every step of the build, unless some step's name contains `name`.
    pub fn assert_vertex(&self, name_contains: &str) {
        assert!(
            self.vertex(name_contains).is_some(),
            "no vertex {name_contains:?}:\n{}",
            self.progress.summary()
        );
    }

    /// A readable account of a failed build: command, failed vertices with
    /// their log tails, and the non-JSON lines of stderr.
    pub fn failure_report(&self) -> String {
        let mut s = format!("build failed ({}): {}\n", self.output.status, self.command);
        for v in self.progress.vertices.iter().filter(|v| v.error.is_some()) {
            let _ = writeln!(
                s,
                "--- failed step: {}\n    error: {}",
                v.name,
                v.error.as_deref().unwrap_or("")
            );
            if !v.logs.is_empty() {
                let _ = writeln!(s, "{}", tail(&v.logs, 40));
            }
        }
        let _ = writeln!(s, "--- stdout ---\n{}", self.output.stdout.trim_end());
        let other = if self.progress.vertices.is_empty() {
            tail(&self.output.stderr, 80)
        } else {
            self.progress.other_lines.join("\n")
        };
        let _ = writeln!(s, "--- stderr (non-progress) ---\n{other}");
        s
    }
}

/// One vertex (build step) as reported by BuildKit, merged over all updates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vertex {
    pub digest: String,
    pub name: String,
    /// True if BuildKit answered this step from its cache.
    pub cached: bool,
    /// RFC 3339 timestamps as BuildKit sent them.
    pub started: Option<String>,
    pub completed: Option<String>,
    pub error: Option<String>,
    /// The step's output (stdout and stderr interleaved), decoded.
    pub logs: String,
}

impl Vertex {
    /// BuildKit started the step and cancelled it because nothing needed its result any more
    /// (what depends on it came from the cache): it did no work.
    pub fn cancelled_unneeded(&self) -> bool {
        self.error
            .as_deref()
            .is_some_and(|e| e.starts_with("context canceled"))
            && self.logs.is_empty()
    }

    /// The step ran: neither answered from the cache nor cancelled as unneeded.
    pub fn ran(&self) -> bool {
        !self.cached && !self.cancelled_unneeded()
    }
}

/// Parsed `--progress=rawjson` output.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// In order of first appearance.
    pub vertices: Vec<Vertex>,
    /// Warnings BuildKit attached to the build (`short` messages).
    pub warnings: Vec<String>,
    /// stderr lines that were not part of a JSON object (buildx's own
    /// messages, e.g. the final `ERROR: failed to solve: …`).
    pub other_lines: Vec<String>,
}

impl Progress {
    /// Parses buildx's rawjson stream: JSON objects (SolveStatus: `vertexes`,
    /// `statuses`, `logs`, `warnings`), pretty-printed one after another, mixed
    /// with plain lines. Later updates of a vertex overwrite earlier ones;
    /// `cached` stays true once seen.
    pub fn parse(stderr: &str) -> Progress {
        let mut p = Progress::default();
        let mut rest = stderr;
        while !rest.is_empty() {
            let trimmed = rest.trim_start();
            if trimmed.is_empty() {
                break;
            }
            if trimmed.starts_with('{') {
                let mut it = serde_json::Deserializer::from_str(trimmed).into_iter::<Value>();
                if let Some(Ok(v)) = it.next() {
                    p.absorb(&v);
                    rest = &trimmed[it.byte_offset()..];
                    continue;
                }
            }
            // Not a JSON object: keep the line, go on with the next one.
            let (line, after) = trimmed.split_once('\n').unwrap_or((trimmed, ""));
            p.other_lines.push(line.trim_end().to_string());
            rest = after;
        }
        p
    }

    fn entry(&mut self, digest: &str) -> &mut Vertex {
        let i = match self.vertices.iter().position(|v| v.digest == digest) {
            Some(i) => i,
            None => {
                self.vertices.push(Vertex {
                    digest: digest.to_string(),
                    ..Vertex::default()
                });
                self.vertices.len() - 1
            }
        };
        &mut self.vertices[i]
    }

    fn absorb(&mut self, status: &Value) {
        let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        for v in status
            .get("vertexes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(digest) = v.get("digest").and_then(Value::as_str) else {
                continue;
            };
            let e = self.entry(digest);
            if let Some(name) = str_of(v, "name") {
                e.name = name;
            }
            e.cached |= v.get("cached").and_then(Value::as_bool).unwrap_or(false);
            if let Some(t) = str_of(v, "started") {
                e.started = Some(t);
            }
            if let Some(t) = str_of(v, "completed") {
                e.completed = Some(t);
            }
            if let Some(err) = str_of(v, "error").filter(|s| !s.is_empty()) {
                e.error = Some(err);
            }
        }
        for l in status
            .get("logs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(digest) = l.get("vertex").and_then(Value::as_str) else {
                continue;
            };
            let data = l
                .get("data")
                .and_then(Value::as_str)
                .map(base64_decode)
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&data).into_owned();
            self.entry(digest).logs.push_str(&text);
        }
        for w in status
            .get("warnings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let short = w
                .get("short")
                .and_then(Value::as_str)
                .map(base64_decode)
                .unwrap_or_default();
            self.warnings
                .push(String::from_utf8_lossy(&short).into_owned());
        }
    }

    /// The first vertex whose name contains the text.
    pub fn vertex(&self, name_contains: &str) -> Option<&Vertex> {
        self.vertices
            .iter()
            .find(|v| v.name.contains(name_contains))
    }

    /// All vertices whose name contains the text.
    pub fn matching(&self, name_contains: &str) -> Vec<&Vertex> {
        self.vertices
            .iter()
            .filter(|v| v.name.contains(name_contains))
            .collect()
    }

    /// Vertices that reported an error.
    pub fn errors(&self) -> Vec<&Vertex> {
        self.vertices.iter().filter(|v| v.error.is_some()).collect()
    }

    /// Panics (listing them) unless every vertex selected by `pred` was cached (or cancelled
    /// as unneeded: [`Vertex::ran`]), and at least one was selected.
    pub fn assert_cached(&self, what: &str, pred: impl Fn(&Vertex) -> bool) {
        let selected: Vec<&Vertex> = self.vertices.iter().filter(|v| pred(v)).collect();
        assert!(
            !selected.is_empty(),
            "no vertex matched {what}; vertices were:\n{}",
            self.summary()
        );
        let not_cached: Vec<&str> = selected
            .iter()
            .filter(|v| v.ran())
            .map(|v| v.name.as_str())
            .collect();
        assert!(
            not_cached.is_empty(),
            "expected every {what} vertex to be cached; these ran:\n  {}\nall vertices:\n{}",
            not_cached.join("\n  "),
            self.summary()
        );
    }

    /// One line per vertex: `[cached|ran|ERROR] name`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for v in &self.vertices {
            let state = match (&v.error, v.cached) {
                (Some(_), _) => "ERROR ",
                (None, true) => "cached",
                (None, false) => "ran   ",
            };
            let _ = writeln!(s, "  [{state}] {}", v.name);
        }
        s
    }
}

/// Standard base64 (Go's encoding of `[]byte` in JSON), padding optional;
/// invalid characters are skipped.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let Some(v) = val(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Whether linux/arm64 binaries run on the engine: an arm64 container of the base image says
/// `aarch64`. (`docker buildx inspect` is no help: BuildKit keeps listing an emulated platform
/// after its emulator is gone.) Without emulation ("exec format error") the test is skipped
/// loudly, or fails under CI; a base image without an arm64 manifest is always a failure.
pub fn arm64_emulation(engine: &Engine, test: &str) -> bool {
    let mut cmd = engine.docker([
        "run",
        "--rm",
        "--pull=never",
        "--network=none",
        "--platform",
        "linux/arm64",
        "debian:bookworm-slim",
        "uname",
        "-m",
    ]);
    let out =
        exec(&mut cmd, Some(Duration::from_secs(120))).unwrap_or_else(|e| panic!("{test}: {e}"));
    if out.status.success() && out.stdout.trim() == "aarch64" {
        return true;
    }
    let said = format!(
        "{}: {}, stdout {:?}, stderr {:?}",
        display_command(&cmd),
        out.status,
        out.stdout.trim(),
        out.stderr.trim()
    );
    if !out.stderr.contains("exec format error") {
        panic!(
            "{test}: no linux/arm64 base image? ({said})\nhint: scripts/base-images.sh makes \
             debian:bookworm-slim and python:3.1x-slim for linux/amd64 and linux/arm64"
        );
    }
    let reason = format!(
        "linux/arm64 binaries do not run here ({said}); scripts/engine.sh registers \
         qemu-user-static with binfmt_misc (`scripts/engine.sh emulation` says why it cannot)"
    );
    if is_ci() {
        panic!("{test}: {reason}");
    }
    eprintln!("\n*** SKIPPED: no arm64 emulation: {test}: {reason} ***\n");
    false
}

/// Image tags removed when dropped ([`Engine::tagged`]).
pub struct Tagged<'a> {
    engine: &'a Engine,
    tags: Vec<String>,
}

impl Drop for Tagged<'_> {
    fn drop(&mut self) {
        for tag in &self.tags {
            self.engine.remove_image(tag);
        }
    }
}

#[cfg(test)]
mod tests {
    //! Parser tests on canned rawjson (no engine needed).
    use super::*;

    const SAMPLE: &str = r#"{
  "vertexes": [
    {
      "digest": "sha256:aaa",
      "name": "[internal] load build definition from Dockerfile"
    }
  ]
}
{
  "vertexes": [
    {
      "digest": "sha256:bbb",
      "name": "[stage-0 2/3] RUN pip install requests",
      "started": "2026-01-01T00:00:00Z"
    }
  ]
}
{
  "logs": [
    {
      "vertex": "sha256:bbb",
      "stream": 1,
      "data": "aGVsbG8K",
      "timestamp": "2026-01-01T00:00:01Z"
    }
  ]
}
{
  "vertexes": [
    {
      "digest": "sha256:bbb",
      "name": "[stage-0 2/3] RUN pip install requests",
      "started": "2026-01-01T00:00:00Z",
      "completed": "2026-01-01T00:00:02Z",
      "error": "process did not complete successfully: exit code: 1"
    },
    {
      "digest": "sha256:ccc",
      "name": "[stage-0 1/3] FROM docker.io/library/python:3.12-slim",
      "cached": true,
      "started": "2026-01-01T00:00:00Z",
      "completed": "2026-01-01T00:00:00Z"
    }
  ]
}
ERROR: failed to solve: process "/bin/sh -c pip install requests" did not complete successfully: exit code: 1
"#;

    #[test]
    fn parses_rawjson_stream() {
        let p = Progress::parse(SAMPLE);
        assert_eq!(p.vertices.len(), 3);
        let run = p.vertex("RUN pip").unwrap();
        assert_eq!(run.logs, "hello\n");
        assert!(!run.cached);
        assert_eq!(run.completed.as_deref(), Some("2026-01-01T00:00:02Z"));
        assert!(run.error.as_deref().unwrap().contains("exit code: 1"));
        assert!(p.vertex("FROM").unwrap().cached);
        assert_eq!(p.errors().len(), 1);
        assert_eq!(p.other_lines.len(), 1);
        assert!(p.other_lines[0].starts_with("ERROR: failed to solve"));
        p.assert_cached("FROM", |v| v.name.contains("FROM"));
    }

    #[test]
    #[should_panic(expected = "these ran")]
    fn assert_cached_reports_uncached() {
        Progress::parse(SAMPLE).assert_cached("RUN", |v| v.name.contains("RUN"));
    }

    #[test]
    fn base64_roundtrip_samples() {
        assert_eq!(base64_decode("aGVsbG8K"), b"hello\n");
        assert_eq!(base64_decode("YQ=="), b"a");
        assert_eq!(base64_decode("YWI="), b"ab");
        assert_eq!(base64_decode(""), b"");
    }

    #[test]
    fn unique_tags_are_valid_and_distinct() {
        let e = Engine {
            host: String::new(),
            server_version: String::new(),
        };
        let a = e.unique_tag("My Test");
        let b = e.unique_tag("My Test");
        assert_ne!(a, b);
        assert!(a.starts_with("layerstack-test/my-test:"));
    }

    #[test]
    fn help_flags_are_recognised() {
        let buildx_029 = "Options:\n      --call string                   Set method for evaluating build\n      --check                         Shorthand for \"--call=check\"\n";
        let buildx_013 = "Options:\n      --print string                  Print result of information request\n  -q, --quiet                         Suppress the build output\n";
        assert!(help_has_flag(buildx_029, "--call"));
        assert!(!help_has_flag(buildx_029, "--print"));
        assert!(help_has_flag(buildx_013, "--print"));
        assert!(!help_has_flag(buildx_013, "--call"));
        assert!(help_has_flag(buildx_013, "--quiet"));
    }

    #[test]
    fn old_engines_by_server_version() {
        let e = |v: &str| Engine {
            host: String::new(),
            server_version: v.into(),
        };
        assert!(e("20.10.24+dfsg1").is_old());
        assert!(e("19.03.15").is_old());
        assert!(!e("26.1.5+dfsg1").is_old());
        assert!(!e("23.0.0").is_old());
        assert!(!e("").is_old());
        assert_eq!(server_major("28.2.2"), Some(28));
    }
}
