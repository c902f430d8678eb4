//! Per-platform overlays (`[services.NAME.platforms."linux/arm64"]`) in one two-platform build:
//! `--platform linux/amd64,linux/arm64` exports an index whose arm64 image is built on the
//! overlay's own base image (`debian:bookworm-slim` instead of `python:3.12-slim`), with the
//! overlay's env, label and extra `run` step, while the amd64 image keeps the service's own.
//! Both images are read from the OCI layout (architecture, config), then loaded into the image
//! store and run — the arm64 one under QEMU — to see each platform's files.
//!
//! Needs what `platforms.rs` needs: linux/arm64 binaries under QEMU (binfmt_misc) and the
//! multi-platform local base images of `scripts/base-images.sh`. Skipped without emulation
//! (a failure under `CI=true`); on the old engine (no multi-platform builds) it is skipped.

use std::path::Path;
use std::process::Command;

use integration_tests::{
    Context, Engine, arm64_emulation, engine_with_frontend, frontend_image, run,
};
use serde_json::Value;

fn engine(test: &str) -> Option<&'static Engine> {
    let e = engine_with_frontend(test)?;
    if e.is_old() {
        eprintln!("{test}: skipped: the old engine has no multi-platform builds");
        return None;
    }
    arm64_emulation(e, test).then_some(e)
}

/// One service with an overlay for linux/arm64: another base, env, label and a `run` step.
/// Tiny steps only (a `run` each): the arm64 one runs under QEMU.
fn stack() -> String {
    format!(
        r#"# syntax={}
[stack]
platforms = ["linux/amd64", "linux/arm64"]

[services.app]
from = "python:3.12-slim"
env = {{ WHICH = "default", SHARED = "yes" }}
labels = {{ "org.example.overlay" = "none" }}
run = "echo default > /which.txt"
cmd = ["sh", "-c", "cat /which.txt"]

[services.app.platforms."linux/arm64"]
from = "debian:bookworm-slim"
env = {{ WHICH = "arm64" }}
labels = {{ "org.example.overlay" = "arm64" }}
run = "uname -m > /arm64-only.txt && echo arm64 > /which.txt"
"#,
        frontend_image()
    )
}

/// Removes the image when the test ends, passed or not.
struct Tagged<'e> {
    engine: &'e Engine,
    tag: String,
}

impl Drop for Tagged<'_> {
    fn drop(&mut self) {
        self.engine.remove_image(&self.tag);
    }
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The JSON blob a descriptor points at, in an unpacked OCI layout.
fn blob(dir: &Path, descriptor: &Value) -> Value {
    let digest = descriptor["digest"].as_str().expect("descriptor digest");
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    read_json(&dir.join("blobs/sha256").join(hex))
}

fn env_of(config: &Value) -> Vec<String> {
    config["config"]["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn each_platform_of_a_two_platform_build_gets_its_own_overlay() {
    let test = "each_platform_of_a_two_platform_build_gets_its_own_overlay";
    let Some(engine) = engine(test) else { return };
    let ctx = Context::new().file("stack.toml", &stack());
    let tag = engine.unique_tag("overlays");
    let out = Context::new();
    let tarball = out.join("out.tar");
    let output = format!("type=oci,dest={tarball},name={tag}");
    let build = engine.buildx_build(&[
        "--network=host",
        "--platform",
        "linux/amd64,linux/arm64",
        "-f",
        &ctx.join("stack.toml"),
        "--target",
        "app",
        "--output",
        &output,
        ctx.path_str(),
    ]);
    // Each platform's plan has its own steps. (Its own base is checked in the configs below:
    // a base's source vertex can be reported under the name another build gave the same
    // digest, so its name is not asserted.)
    // amd64: the service's one `run`; arm64: the overlay's `run` after it (lists extend).
    build.assert_vertex("[service app 1/1] run echo default > /which.txt");
    build.assert_vertex("[service app 1/2] run echo default > /which.txt");
    build.assert_vertex("[service app 2/2] run uname -m > /arm64-only.txt");

    let layout = Context::new();
    let mut tar = Command::new("tar");
    tar.arg("-xf").arg(&tarball).arg("-C").arg(layout.path());
    run(tar);
    let dir = layout.path();
    let top = read_json(&dir.join("index.json"));
    let index = blob(dir, &top["manifests"][0]);
    let images: Vec<&Value> = index["manifests"]
        .as_array()
        .expect("index manifests")
        .iter()
        .filter(|d| d["annotations"]["vnd.docker.reference.type"] != "attestation-manifest")
        .collect();
    assert_eq!(images.len(), 2, "one image per platform: {index:#}");
    let config_of = |arch: &str| -> Value {
        let d = images
            .iter()
            .find(|d| d["platform"]["architecture"] == arch)
            .unwrap_or_else(|| panic!("no {arch} image: {index:#}"));
        let manifest = blob(dir, d);
        blob(dir, &manifest["config"])
    };
    let amd64 = config_of("amd64");
    let arm64 = config_of("arm64");
    assert_eq!(amd64["architecture"], "amd64");
    assert_eq!(arm64["architecture"], "arm64");

    // The service's own settings on amd64 …
    let env = env_of(&amd64);
    assert!(env.contains(&"WHICH=default".to_string()), "{env:?}");
    assert!(env.contains(&"SHARED=yes".to_string()), "{env:?}");
    assert_eq!(
        amd64["config"]["Labels"]["org.example.overlay"], "none",
        "{amd64:#}"
    );
    // … and the overlay's on arm64: its env wins, the image's other entries stay.
    let env = env_of(&arm64);
    assert!(env.contains(&"WHICH=arm64".to_string()), "{env:?}");
    assert!(!env.contains(&"WHICH=default".to_string()), "{env:?}");
    assert!(env.contains(&"SHARED=yes".to_string()), "{env:?}");
    assert_eq!(
        arm64["config"]["Labels"]["org.example.overlay"], "arm64",
        "{arm64:#}"
    );
    // Each on its own base: python:3.12-slim says CMD python3 in its history and has
    // python3 on PATH; bookworm-slim has neither. The base's first layer differs anyway.
    assert_ne!(
        amd64["rootfs"]["diff_ids"][0], arm64["rootfs"]["diff_ids"][0],
        "the two platforms start from the same layer"
    );

    // Into the image store, then each platform runs: its files come from its own steps.
    let _guard = Tagged {
        engine,
        tag: tag.clone(),
    };
    let loaded = run(engine.docker(["load", "-i", &tarball])).stdout;
    assert!(loaded.contains(&tag), "docker load: {loaded}");
    let script = "cat /which.txt; cat /arm64-only.txt 2>/dev/null || echo none; \
                  command -v python3 >/dev/null && echo python || echo no-python";
    let amd = engine.docker_run_with(
        &["--network=none", "--platform", "linux/amd64"],
        &tag,
        &["sh", "-c", script],
    );
    let lines: Vec<&str> = amd.lines().collect();
    assert_eq!(lines, ["default", "none", "python"], "amd64: {amd}");
    let arm = engine.docker_run_with(
        &["--network=none", "--platform", "linux/arm64"],
        &tag,
        &["sh", "-c", script],
    );
    let lines: Vec<&str> = arm.lines().collect();
    assert_eq!(lines, ["arm64", "aarch64", "no-python"], "arm64: {arm}");
}
