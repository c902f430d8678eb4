//! `--call`/`--print` subrequests through buildx 0.13 (`BUILDX_EXPERIMENTAL=1 --print`):
//! targets lists services, layers and variants; outline lists args and cache mounts. Never a
//! fallback to the Dockerfile frontend.

use integration_tests::{Context, Engine, exec, frontend_image};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

fn print(engine: &Engine, what: &str, ctx: &Context, extra: &[&str]) -> String {
    let mut args = vec!["buildx", "build", "--print", what];
    // On a standalone BuildKit (scripts/test-buildkit.sh): that builder.
    let builder = integration_tests::builder::selected();
    if let Some(b) = &builder {
        args.extend_from_slice(&["--builder", b]);
    }
    args.extend_from_slice(extra);
    let file = ctx.join("stack.toml");
    args.extend_from_slice(&["-f", &file, ctx.path_str()]);
    let mut cmd = engine.docker(&args);
    cmd.env("BUILDX_EXPERIMENTAL", "1");
    let out = exec(&mut cmd, None).unwrap();
    assert!(
        out.status.success(),
        "--print {what} failed:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("dockerfile parse error")
            && !out.stderr.contains("unknown instruction"),
        "fell back to the Dockerfile frontend:\n{}",
        out.stderr
    );
    out.stdout
}

const STACK: &str = r#"
[args]
PYTHON_VERSION = { default = "3.12", description = "Python of every image" }
REGISTRY = "ghcr.io/acme"

[variants.cpu]
description = "CPU images"
platforms = ["linux/amd64"]

[layers.runtime]
description = "Python runtime"
from = "python:${PYTHON_VERSION}-slim"
apt = ["curl"]
requirements = ["requirements.txt"]

[services.api]
description = "The HTTP API"
from = "runtime"
copy = ["app"]
"#;

#[test]
fn targets_and_outline() {
    let Some(engine) = engine("targets_and_outline") else {
        return;
    };
    let ctx = Context::new()
        .file(
            "stack.toml",
            &format!("# syntax={}{STACK}", frontend_image()),
        )
        .file("requirements.txt", "")
        .file("app/x", "");
    let targets = print(engine, "targets", &ctx, &[]);
    let lines: Vec<&str> = targets.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["TARGET", "DESCRIPTION"],
        "{targets}"
    );
    assert!(
        targets.contains("api (default)") && targets.contains("service: The HTTP API"),
        "{targets}"
    );
    assert!(
        targets.contains("runtime") && targets.contains("layer: Python runtime"),
        "{targets}"
    );
    assert!(
        targets.contains("api@cpu") && targets.contains("service api in variant cpu: CPU images"),
        "{targets}"
    );

    let outline = print(
        engine,
        "outline",
        &ctx,
        &["--target", "api", "--build-arg", "PYTHON_VERSION=3.11"],
    );
    assert!(
        outline.contains("TARGET:") && outline.contains("api"),
        "{outline}"
    );
    let arg = outline
        .lines()
        .find(|l| l.starts_with("PYTHON_VERSION"))
        .unwrap_or_else(|| panic!("{outline}"));
    assert!(
        arg.contains("3.11") && arg.contains("Python of every image"),
        "the build arg overrides the default: {arg}"
    );
    assert!(
        outline
            .lines()
            .any(|l| l.starts_with("REGISTRY") && l.contains("ghcr.io/acme")),
        "{outline}"
    );
}
