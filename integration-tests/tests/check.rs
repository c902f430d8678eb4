//! `docker buildx build --call check` (`--check`): the frontend answers `frontend.lint` with
//! the stack's lint findings, buildx prints them (`WARNING: Rule - URL`, the detail, the
//! stack.toml excerpt) and exits with `result.statuscode`; never a fallback to the Dockerfile
//! frontend.
//!
//! Needs a buildx with `--call` (≥ 0.15; detected with `docker buildx build --help`). When the
//! engine's buildx is older, `LAYERSTACK_BUILDX_PLUGINS` may name a directory holding a newer
//! `docker-buildx` plugin (e.g. Debian unstable's docker-buildx 0.29 unpacked with `dpkg -x`:
//! `…/usr/libexec/docker/cli-plugins`); it is used through a private `DOCKER_CONFIG` with
//! `cliPluginsExtraDirs`. Without either, the tests are skipped — except under `CI=true` on a
//! current engine, where they fail. The old engine (dockerd 20.10) has no `--call`: skipped.
//!
//! The frontend image is given by `BUILDKIT_SYNTAX` (the examples' `# syntax=` names
//! `layerstack:dev`), so `LAYERSTACK_FRONTEND_IMAGE` applies to them too.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use integration_tests::{Context, Engine, exec, frontend_image, repo_root};
use serde_json::Value;

/// The private DOCKER_CONFIG for `LAYERSTACK_BUILDX_PLUGINS` (None: the engine's own buildx
/// has `--call`), or why there is no buildx with `--call`.
fn call_support(engine: &Engine) -> &'static Result<Option<PathBuf>, String> {
    static S: OnceLock<Result<Option<PathBuf>, String>> = OnceLock::new();
    S.get_or_init(|| {
        // What `docker buildx build --help` printed, last try first: a busy machine has made
        // one run fail, so a run whose output lacks `--call` is retried before deciding.
        let last = std::cell::RefCell::new(String::new());
        let has_call = |config: Option<&Path>| {
            (0..3).any(|attempt| {
                if attempt > 0 {
                    std::thread::sleep(std::time::Duration::from_secs(2));
                }
                let mut cmd = engine.docker(["buildx", "build", "--help"]);
                if let Some(c) = config {
                    cmd.env("DOCKER_CONFIG", c);
                }
                match exec(&mut cmd, Some(std::time::Duration::from_secs(60))) {
                    Ok(o) if o.stdout.contains("--call") => true,
                    Ok(o) => {
                        *last.borrow_mut() = format!(
                            "{}; stdout {:?}; stderr {:?}",
                            o.status,
                            o.stdout.chars().take(300).collect::<String>(),
                            o.stderr.chars().take(300).collect::<String>()
                        );
                        false
                    }
                    Err(e) => {
                        *last.borrow_mut() = e;
                        false
                    }
                }
            })
        };
        if has_call(None) {
            return Ok(None);
        }
        let Some(dir) = std::env::var_os("LAYERSTACK_BUILDX_PLUGINS").filter(|d| !d.is_empty())
        else {
            return Err(format!(
                "the engine's buildx has no --call and LAYERSTACK_BUILDX_PLUGINS is not set \
                     (`docker buildx build --help`: {})",
                last.borrow()
            ));
        };
        let config = std::env::temp_dir().join(format!("layerstack-check-{}", std::process::id()));
        std::fs::create_dir_all(&config).map_err(|e| format!("{}: {e}", config.display()))?;
        let json = serde_json::json!({ "cliPluginsExtraDirs": [dir.to_string_lossy()] });
        std::fs::write(config.join("config.json"), json.to_string())
            .map_err(|e| format!("{}: {e}", config.display()))?;
        if has_call(Some(&config)) {
            Ok(Some(config))
        } else {
            Err(format!(
                "the buildx plugin in LAYERSTACK_BUILDX_PLUGINS={} has no --call",
                dir.to_string_lossy()
            ))
        }
    })
}

fn engine(test: &str) -> Option<&'static Engine> {
    let engine = integration_tests::engine_with_frontend(test)?;
    if engine.is_old() {
        eprintln!("\n*** SKIPPED: {test}: the old engine's buildx has no --call ***\n");
        return None;
    }
    match call_support(engine) {
        Ok(_) => Some(engine),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("{test}: no buildx with --call under CI ({why})")
        }
        Err(why) => {
            eprintln!("\n*** SKIPPED: {test}: {why} ***\n");
            None
        }
    }
}

/// What `docker buildx build --call CALL … -f DIR/stack.toml DIR` printed and its exit code.
struct Check {
    code: i32,
    stdout: String,
    stderr: String,
}

fn call(engine: &Engine, call: &str, dir: &Path, extra: &[&str]) -> Check {
    let syntax = format!("BUILDKIT_SYNTAX={}", frontend_image());
    let file = dir.join("stack.toml");
    let mut args: Vec<&str> = vec!["buildx", "build", "--call", call, "--build-arg", &syntax];
    args.extend_from_slice(extra);
    let file = file.to_string_lossy().into_owned();
    let dir = dir.to_string_lossy().into_owned();
    args.extend_from_slice(&["-f", &file, &dir]);
    let mut cmd = engine.docker(&args);
    if let Ok(Some(config)) = call_support(engine) {
        cmd.env("DOCKER_CONFIG", config);
    }
    let out = exec(&mut cmd, None).unwrap();
    let c = Check {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    };
    assert!(
        !c.stderr.contains("dockerfile parse error")
            && !c.stderr.contains("unknown instruction")
            && !c.stdout.contains("unknown instruction"),
        "fell back to the Dockerfile frontend:\n{}\n{}",
        c.stdout,
        c.stderr
    );
    c
}

/// The rule names and first lines of a `format=json` answer.
fn rules(c: &Check) -> Vec<(String, i64)> {
    let v: Value = serde_json::from_str(c.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", c.stdout, c.stderr));
    let mut out: Vec<(String, i64)> = v["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings list: {v}"))
        .iter()
        .map(|w| {
            (
                w["ruleName"].as_str().unwrap().to_string(),
                w["location"]["ranges"][0]["start"]["line"]
                    .as_i64()
                    .unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn examples_check_prints_the_rules_that_apply() {
    let Some(engine) = engine("examples_check_prints_the_rules_that_apply") else {
        return;
    };
    let mut seen = 0;
    for e in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let dir = e.unwrap().path();
        if !dir.join("stack.toml").is_file() {
            continue;
        }
        seen += 1;
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let c = call(engine, "check", &dir, &[]);
        if name == "ragex" {
            // An nvidia/cuda base with torch +cu118 wheels on top: CUDA twice.
            assert_eq!(c.code, 1, "{name}: {}\n{}", c.stdout, c.stderr);
            assert!(
                c.stdout
                    .contains("Check complete, 1 warning has been found!"),
                "{name}: {}\n{}",
                c.stdout,
                c.stderr
            );
            assert!(
                c.stdout.contains("WARNING: CudaInstalledTwice - https://")
                    && c.stdout.contains("stack-toml.md#cudainstalledtwice"),
                "{}",
                c.stdout
            );
            assert!(c.stdout.contains(">>> torch = true"), "{}", c.stdout);
        } else {
            assert_eq!(c.code, 0, "{name}: {}\n{}", c.stdout, c.stderr);
            assert!(
                c.stdout.contains("Check complete, no warnings found."),
                "{name}: {}\n{}",
                c.stdout,
                c.stderr
            );
        }
    }
    assert!(seen >= 6, "examples: {seen}");
}

const RULES: &str = r#"
[args]
INDEX = "http://127.0.0.1:9/simple"

[torch]
packages = { torch = "2.3.1" }

[variants.cpu]
platforms = ["linux/amd64"]
torch = "cpu"

[layers.base]
from = "python:3.12-slim"
requirements = ["requirements/base.lock"]

[layers.ml]
from = "base"
torch = true

[services.api]
from = "ml"
index-url = "${INDEX}"
pip = ["numpy==2.0.1", "torch==2.3.1", "nvidia-cublas-cu12==12.1.3.1"]
copy = ["."]
"#;

#[test]
fn a_stack_that_triggers_rules() {
    let Some(engine) = engine("a_stack_that_triggers_rules") else {
        return;
    };
    let ctx = Context::new()
        .file(
            "stack.toml",
            &format!("# syntax={}{RULES}", frontend_image()),
        )
        .file("requirements/base.lock", "numpy==1.26.4\nrequests\n")
        .file(".git/HEAD", "ref: refs/heads/main\n")
        .file("app/main.py", "print('hi')\n");
    let dir = ctx.path();
    // Line numbers: the stack starts on line 1 with `# syntax=`.
    let c = call(engine, "check,format=json", dir, &[]);
    let got = rules(&c);
    let want: Vec<(String, i64)> = [
        ("ConflictingPins", 23), // numpy
        ("ConflictingPins", 23), // torch 2.3.1 over 2.3.1+cpu
        ("CudaWheelsInCpuImage", 23),
        ("LargeContextWithoutDockerignore", 24),
        ("NetworkHostNeeded", 23),
        ("TorchInstalledTwice", 23),
        ("UnpinnedRequirements", 14),
    ]
    .iter()
    .map(|(r, l)| (r.to_string(), *l))
    .collect();
    assert_eq!(got, want, "{}", c.stdout);
    assert_eq!(c.code, 1, "result.statuscode: {}", c.stderr);

    // The text buildx prints: every warning with its URL, detail and excerpt.
    let c = call(engine, "check", dir, &[]);
    assert_eq!(c.code, 1);
    assert!(
        c.stdout
            .contains("Check complete, 7 warnings have been found!"),
        "{}\n{}",
        c.stdout,
        c.stderr
    );
    assert!(
        c.stdout
            .contains("`requirements/base.lock` is a lock; not pinned: requests (line 2)"),
        "read through the gateway: {}",
        c.stdout
    );
    assert!(c.stdout.contains("copies `.` (with .git)"), "{}", c.stdout);
    assert!(
        c.stdout.contains("WARNING: NetworkHostNeeded - https://"),
        "{}",
        c.stdout
    );
    assert!(c.stdout.contains("stack.toml:23\n"), "{}", c.stdout);

    // --network=host and a .dockerignore remove two findings; ignorestatus keeps exit 0.
    let ctx = ctx.file(".dockerignore", ".git\n");
    let c = call(
        engine,
        "check,format=json,ignorestatus=true",
        ctx.path(),
        &["--network=host"],
    );
    let got: Vec<String> = rules(&c).into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        got,
        [
            "ConflictingPins",
            "ConflictingPins",
            "CudaWheelsInCpuImage",
            "TorchInstalledTwice",
            "UnpinnedRequirements"
        ]
    );
    assert_eq!(c.code, 0, "{}", c.stderr);
}

#[test]
fn a_clean_stack_and_a_broken_one() {
    let Some(engine) = engine("a_clean_stack_and_a_broken_one") else {
        return;
    };
    let clean = format!(
        "# syntax={}\n[services.api]\nfrom = \"python:3.12-slim\"\npip = [\"flask==3.0.3\"]\n",
        frontend_image()
    );
    let ctx = Context::new().file("stack.toml", &clean);
    let c = call(engine, "check", ctx.path(), &[]);
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    assert!(
        c.stdout.contains("Check complete, no warnings found."),
        "{}",
        c.stdout
    );

    // A stack that does not build: the error, with its stack.toml excerpt, and a failure.
    let broken = clean.replace("pip = ", "torch = true\npip = ");
    let ctx = Context::new().file("stack.toml", &broken);
    let c = call(engine, "check", ctx.path(), &[]);
    assert_ne!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    let all = format!("{}{}", c.stdout, c.stderr);
    assert!(
        all.contains("`torch` is used but the stack has no [torch] table"),
        "{all}"
    );
    assert!(all.contains(">>> torch = true"), "{all}");

    // describe lists lint.
    let c = call(engine, "subrequests.describe", ctx.path(), &[]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stdout.contains("lint"), "{}", c.stdout);
}
