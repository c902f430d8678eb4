//! `llb-gen check` runs the lint rules offline: requirements files and copied directories are
//! read from the stack file's directory, findings are warnings (exit 0), and the texts are the
//! ones `docker buildx build --check` prints.

use std::path::PathBuf;
use std::process::Command;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("llb-gen-lint-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `llb-gen check DIR/stack.toml ARGS…`: (exit code, stdout, stderr).
fn check(dir: &TempDir, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_llb-gen"))
        .arg("check")
        .arg(dir.0.join("stack.toml"))
        .args(args)
        .output()
        .expect("run llb-gen");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const STACK: &str = r#"# syntax=layerstack:dev
[args]
INDEX = "http://127.0.0.1:3141/simple"

[layers.base]
from = "python:3.12-slim"
requirements = ["requirements/base.lock"]

[services.api]
from = "base"
index-url = "${INDEX}"
pip = ["numpy==2.0.1"]
copy = ["app"]
"#;

#[test]
fn check_reports_lint_findings_from_the_context() {
    let d = TempDir::new("rules");
    d.write("stack.toml", STACK);
    d.write("requirements/base.lock", "numpy==1.26.4\nrequests\n");
    d.write("app/main.py", "print('hi')\n");
    d.write("app/.venv/pyvenv.cfg", "home = /usr/bin\n");
    let (code, out, err) = check(&d, &[]);
    assert_eq!(code, 0, "warnings only: {err}");
    assert!(out.contains(": ok (2 targets, 4 warnings)"), "{out}\n{err}");
    for (rule, text) in [
        ("ConflictingPins", "pins `numpy==2.0.1`"),
        (
            "UnpinnedRequirements",
            "`requirements/base.lock` is a lock; not pinned: requests (line 2)",
        ),
        (
            "LargeContextWithoutDockerignore",
            "copies `app` (with .venv)",
        ),
        ("NetworkHostNeeded", "`http://127.0.0.1:3141/simple`"),
    ] {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("warning: {rule}: ")))
            .unwrap_or_else(|| panic!("no {rule} in:\n{err}"));
        assert!(line.contains(text), "{line}");
    }
    assert!(
        err.contains("docs/stack-toml.md#conflictingpins"),
        "the URL is in the hint: {err}"
    );

    // The same stack with host networking, a .dockerignore and a consistent pin: clean.
    d.write(".dockerignore", ".venv\n");
    d.write("requirements/base.lock", "numpy==2.0.1\nrequests==2.32.3\n");
    let (code, out, err) = check(&d, &["--network", "host"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok (2 targets, 0 warnings)"), "{out}\n{err}");
}

#[test]
fn examples_lint_as_documented() {
    // Every example checks with exit 0; ragex (an nvidia/cuda base with torch +cu118 wheels)
    // is the one that installs CUDA twice.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for e in std::fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path().join("stack.toml");
        if !p.is_file() {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_llb-gen"))
            .arg("check")
            .arg(&p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}: {err}", p.display());
        let rules: Vec<&str> = err
            .lines()
            .filter_map(|l| l.strip_prefix("warning: "))
            .filter_map(|l| l.split_once(": ").map(|(r, _)| r))
            .filter(|r| r.chars().all(|c| c.is_ascii_alphanumeric()))
            .collect();
        let name = p.parent().unwrap().file_name().unwrap().to_string_lossy();
        if name == "ragex" {
            assert_eq!(rules, ["CudaInstalledTwice"], "{err}");
        } else {
            assert!(rules.is_empty(), "{name}: {err}");
        }
    }
}
