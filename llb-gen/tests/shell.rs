//! The image's shell: a shell-form `cmd` or `entrypoint` runs with the `Shell` of the image's
//! config (inherited from its base, as a Dockerfile's `SHELL` is), `/bin/sh -c` without one, and
//! the `Shell` stays in the result's config. A shell-form healthcheck is `CMD-SHELL`, which
//! Docker runs with that shell.

use llb_gen::convert::{NoImages, ResolvedImages, convert};
use llb_gen::plan::BuildOptions;
use llb_gen::source::SourceFile;
use serde_json::Value;

const STACK: &str = r#"# syntax=layerstack:dev
[layers.base]
from = "python:3.12-slim"

[services.api]
from = "base"
cmd = "exec python -m api --port ${PORT:-8000}"
healthcheck = { cmd = "curl -fsS localhost:8000 || exit 1" }

[services.worker]
from = "base"
entrypoint = "exec python -m worker"

[services.exec]
from = "base"
cmd = ["python", "-m", "api"]
"#;

const PY: &str = "docker.io/library/python:3.12-slim";

fn config(target: &str, images: &dyn llb_gen::convert::ImageResolver) -> Value {
    let file = SourceFile::new("stack.toml", STACK);
    let opts = BuildOptions {
        target: Some(target.into()),
        ..BuildOptions::default()
    };
    let (_, plan) = llb_gen::load(&file, &opts).expect("valid stack");
    let out = convert(&plan, &opts, images, &file).expect("converts");
    let v: Value = serde_json::from_slice(&out.image_config).unwrap();
    v["config"].clone()
}

fn with_shell(shell: &[&str]) -> ResolvedImages {
    let mut images = ResolvedImages::default();
    let cfg = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["python3"], "Shell": shell },
        "rootfs": { "type": "layers", "diff_ids": [] },
    });
    images.configs.insert(
        (PY.to_string(), "linux/amd64".to_string()),
        serde_json::to_vec(&cfg).unwrap(),
    );
    images
}

#[test]
fn a_shell_form_runs_with_the_base_images_shell() {
    let bash = ["/bin/bash", "-o", "pipefail", "-c"];
    let c = config("api", &with_shell(&bash));
    assert_eq!(
        c["Cmd"],
        serde_json::json!([
            "/bin/bash",
            "-o",
            "pipefail",
            "-c",
            "exec python -m api --port ${PORT:-8000}"
        ])
    );
    assert_eq!(
        c["Shell"],
        serde_json::json!(bash),
        "the shell is inherited"
    );
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "curl -fsS localhost:8000 || exit 1"])
    );
    let c = config("worker", &with_shell(&bash));
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/bin/bash", "-o", "pipefail", "-c", "exec python -m worker"])
    );
    assert!(
        c["Cmd"].is_null(),
        "a new entrypoint resets the inherited cmd: {c}"
    );
    // The exec form is the argv as written, whatever the shell.
    let c = config("exec", &with_shell(&bash));
    assert_eq!(c["Cmd"], serde_json::json!(["python", "-m", "api"]));
}

#[test]
fn without_a_shell_in_the_base_it_is_bin_sh() {
    for images in [
        &NoImages as &dyn llb_gen::convert::ImageResolver,
        &with_shell(&[]),
    ] {
        let c = config("api", images);
        assert_eq!(
            c["Cmd"],
            serde_json::json!(["/bin/sh", "-c", "exec python -m api --port ${PORT:-8000}"])
        );
        assert!(c["Shell"].is_null(), "no Shell written: {c}");
    }
}
