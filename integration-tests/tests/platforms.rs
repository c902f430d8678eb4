//! Multi-platform builds through `# syntax=`: the quick-start stack built for linux/amd64 and
//! linux/arm64 in one `docker buildx build` (an OCI image index with one manifest per platform),
//! and for linux/arm64 alone; each platform's image is inspected and run.
//!
//! Needs, besides the engine: linux/arm64 binaries running under QEMU (`scripts/engine.sh`
//! registers qemu-user-static with binfmt_misc) and multi-platform base images
//! (`scripts/base-images.sh` makes `python:3.12-slim` an index of linux/amd64 and linux/arm64).
//! Without emulation the tests are skipped, except under `CI=true`, where that is a failure;
//! base images without an arm64 manifest are always a failure.
//!
//! Engine facts these tests rely on (dockerd 26.1, BuildKit v0.13, buildx 0.13.1):
//! - `--output type=oci,dest=…` writes the index to a tarball (OCI layout). Two exporters in one
//!   build (`--output type=oci,… --output type=image,…`) export both and then fail with
//!   `ERROR: failed to solve: not found` on this engine, so the tarball is loaded into the
//!   image store with `docker load` to run it.
//! - buildx adds a provenance attestation by default: the index then also has one
//!   `unknown/unknown` manifest per platform (`vnd.docker.reference.type: attestation-manifest`).

use std::path::Path;
use std::process::Command;

use integration_tests::{
    Build, Context, Engine, arm64_emulation, engine_with_frontend, repo_root, run,
};
use serde_json::{Value, json};

/// A platform the tests build for, and what it looks like from inside a container.
struct Arch {
    /// `--platform` value.
    platform: &'static str,
    /// OCI `architecture`.
    arch: &'static str,
    /// `uname -m`.
    uname: &'static str,
    /// `sysconfig.get_platform()`.
    sysconfig: &'static str,
    /// The machine part of Python's extension-module suffix and of pip's platform tags.
    machine: &'static str,
}

const AMD64: Arch = Arch {
    platform: "linux/amd64",
    arch: "amd64",
    uname: "x86_64",
    sysconfig: "linux-x86_64",
    machine: "x86_64",
};

const ARM64: Arch = Arch {
    platform: "linux/arm64",
    arch: "arm64",
    uname: "aarch64",
    sysconfig: "linux-aarch64",
    machine: "aarch64",
};

fn root() -> String {
    repo_root().to_string_lossy().into_owned()
}

fn stack() -> String {
    format!("{}/stack.toml", root())
}

/// The engine with the frontend image built (`engine_or_skip`, then `ensure_frontend`), if
/// linux/arm64 binaries also run on it.
fn engine(test: &str) -> Option<&'static Engine> {
    let e = engine_with_frontend(test)?;
    if e.is_old() {
        // The old engine's classic image store has no arm64 base images: the tests assert
        // its clear failures instead (see `Engine::is_old`).
        return Some(e);
    }
    arm64_emulation(e, test).then_some(e)
}

/// `docker buildx build ARGS`, panicking with the build's report — plus a hint when a base
/// image has no manifest for the platform (base images made before they were multi-platform).
fn build(engine: &Engine, args: &[&str]) -> Build {
    match engine.try_buildx_build(args) {
        Ok(b) => b,
        Err(b) => {
            let report = b.failure_report();
            let hint = if report.contains("no match for platform") {
                "\nhint: the base images have no linux/arm64 manifest: run scripts/base-images.sh\n"
            } else {
                ""
            };
            panic!("{report}{hint}");
        }
    }
}

/// Runs a shell script in the image for one platform (no network) and returns its lines.
fn run_lines(engine: &Engine, image: &str, arch: &Arch, script: &str) -> Vec<String> {
    engine
        .docker_run_with(
            &["--network=none", "--platform", arch.platform],
            image,
            &["sh", "-c", script],
        )
        .lines()
        .map(str::to_string)
        .collect()
}

/// What a container of the quick-start image says about its platform, checked for `arch`:
/// the kernel's machine, Python's platform and extension suffix, the platform tag pip installs
/// wheels for, and the app itself (as the non-root user).
fn check_runs_as(engine: &Engine, image: &str, arch: &Arch) {
    let script = "uname -m; \
        python3 -c 'import sysconfig; print(sysconfig.get_platform()); print(sysconfig.get_config_var(\"EXT_SUFFIX\"))'; \
        python3 -c 'from pip._vendor.packaging import tags; print(next(iter(tags.sys_tags())))'; \
        python3 -c 'import humanize, os; print(humanize.__file__)'; \
        python3 -m app --once";
    let lines = run_lines(engine, image, arch, script);
    let what = format!("{image} on {}: {lines:#?}", arch.platform);
    assert_eq!(lines.len(), 6, "{what}");
    assert_eq!(lines[0], arch.uname, "uname -m: {what}");
    assert_eq!(lines[1], arch.sysconfig, "sysconfig.get_platform(): {what}");
    assert!(
        lines[2].contains(&format!("-{}-linux-gnu", arch.machine)),
        "EXT_SUFFIX: {what}"
    );
    // e.g. cp311-cp311-manylinux_2_36_aarch64: pip picks wheels for this platform.
    assert!(
        lines[3].starts_with("cp3") && lines[3].ends_with(&format!("_{}", arch.machine)),
        "pip's first platform tag: {what}"
    );
    // The requirement of the runtime layer, installed for this platform's interpreter.
    assert!(lines[4].contains("/humanize/"), "humanize: {what}");
    let app: Value = serde_json::from_str(&lines[5]).unwrap_or_else(|e| panic!("{e}: {what}"));
    assert_eq!(app["service"], "layerstack-quickstart-api", "{what}");
    assert_eq!(app["user"], "1000", "runs as the non-root user: {what}");
}

/// The image config the quick-start's `api` service must have on every platform (`config` is
/// the `config` object of an OCI image config, as in the OCI tarball).
fn check_service_config(config: &Value, what: &str) {
    assert_eq!(config["User"], "appuser", "{what}");
    assert_eq!(config["WorkingDir"], "/app", "{what}");
    assert_eq!(config["Cmd"], json!(["python3", "-m", "app"]), "{what}");
    assert_eq!(config["ExposedPorts"], json!({"8000/tcp": {}}), "{what}");
    assert_eq!(
        config["Labels"]["org.opencontainers.image.title"], "layerstack-quickstart-api",
        "{what}"
    );
    assert_eq!(
        config["Healthcheck"]["Test"],
        json!([
            "CMD-SHELL",
            "curl -fsS http://localhost:8000/health || exit 1"
        ]),
        "{what}"
    );
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap_or_else(|| panic!("no Env: {what}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        env.contains(&"LANG=C.UTF-8"),
        "inherited from the base: {env:?} {what}"
    );
    assert!(env.contains(&"PYTHONUNBUFFERED=1"), "{env:?} {what}");
}

/// An OCI image layout unpacked from a tarball (`tar -x`), read blob by blob.
struct OciLayout {
    dir: Context,
}

impl OciLayout {
    fn unpack(tarball: &Path) -> OciLayout {
        let dir = Context::new();
        let mut tar = Command::new("tar");
        tar.arg("-xf").arg(tarball).arg("-C").arg(dir.path());
        run(tar);
        OciLayout { dir }
    }

    fn read_json(&self, rel: &str) -> Value {
        let p = self.dir.path().join(rel);
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn blob_path(&self, digest: &str) -> std::path::PathBuf {
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
        self.dir.path().join("blobs/sha256").join(hex)
    }

    /// The JSON blob a descriptor points at.
    fn blob(&self, descriptor: &Value) -> Value {
        let digest = descriptor["digest"].as_str().expect("descriptor digest");
        let p = self.blob_path(digest);
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("blob {digest}: {e}"));
        assert_eq!(
            Some(bytes.len() as u64),
            descriptor["size"].as_u64(),
            "size of blob {digest}"
        );
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("blob {digest}: {e}"))
    }

    fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }
}

/// One `docker buildx build --platform linux/amd64,linux/arm64` of the quick-start through the
/// frontend gives an index with one image per platform, each with its platform's base image,
/// architecture and the service's config; loaded into the image store, each platform runs.
#[test]
fn quickstart_multi_platform_index() {
    let test = "quickstart_multi_platform_index";
    let Some(engine) = engine(test) else { return };
    let tag = engine.unique_tag("quickstart-multi");
    let out = Context::new();
    let tarball = out.join("out.tar");
    let output = format!("type=oci,dest={tarball},name={tag}");
    let platforms = format!("{},{}", AMD64.platform, ARM64.platform);
    let args = [
        "--network=host",
        "--platform",
        &platforms,
        "-f",
        &stack(),
        "--target",
        "api",
        "--output",
        &output,
        &root(),
    ];
    if engine.is_old() {
        // dockerd 20.10 (legacy image store): buildx's docker driver refuses the OCI exporter
        // and multi-platform builds before the frontend runs.
        let failed = engine
            .try_buildx_build(&args)
            .expect_err("no multi-platform/OCI export on the old engine");
        let err = &failed.output.stderr;
        assert!(
            err.contains("OCI exporter is not supported for the docker driver")
                || err.contains("Multi-platform build is not supported for the docker driver"),
            "{err}"
        );
        return;
    }
    build(engine, &args);

    // index.json → the image index (manifest list) → one manifest per platform (+ attestations).
    let oci = OciLayout::unpack(Path::new(&tarball));
    let top = oci.read_json("index.json");
    let entries = top["manifests"].as_array().expect("index.json manifests");
    assert_eq!(entries.len(), 1, "one image in the tarball: {top:#}");
    assert_eq!(
        entries[0]["mediaType"], "application/vnd.oci.image.index.v1+json",
        "a multi-platform build exports an index: {top:#}"
    );
    let name = entries[0]["annotations"]["io.containerd.image.name"]
        .as_str()
        .unwrap_or_default();
    assert!(name.ends_with(&tag), "image name {name:?}, want …{tag}");
    let list = oci.blob(&entries[0]);
    let descriptors = list["manifests"].as_array().expect("index manifests");
    let is_attestation =
        |d: &&Value| d["annotations"]["vnd.docker.reference.type"] == "attestation-manifest";
    let images: Vec<&Value> = descriptors.iter().filter(|d| !is_attestation(d)).collect();
    let mut listed: Vec<String> = images
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["platform"]["os"].as_str().unwrap_or("?"),
                d["platform"]["architecture"].as_str().unwrap_or("?")
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![AMD64.platform, ARM64.platform],
        "one image per platform: {list:#}"
    );
    // Attestations (buildx's default provenance) each refer to one of the images.
    for a in descriptors.iter().filter(is_attestation) {
        let subject = &a["annotations"]["vnd.docker.reference.digest"];
        assert!(
            images.iter().any(|d| d["digest"] == *subject),
            "attestation for an unknown manifest: {a:#}"
        );
    }

    let mut base_layers = vec![];
    for arch in [&AMD64, &ARM64] {
        let d = images
            .iter()
            .find(|d| d["platform"]["architecture"] == arch.arch)
            .expect("listed above");
        let what = format!("{} image in the index", arch.platform);
        let variant = d["platform"]["variant"].as_str();
        assert!(
            variant.is_none() || (arch.arch == "arm64" && variant == Some("v8")),
            "platform variant {variant:?}: {what}"
        );
        let manifest = oci.blob(d);
        assert_eq!(
            manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
            "{what}"
        );
        let layers = manifest["layers"].as_array().expect("manifest layers");
        assert!(!layers.is_empty(), "{what}");
        for l in layers {
            let digest = l["digest"].as_str().expect("layer digest");
            assert!(oci.has_blob(digest), "layer {digest} missing: {what}");
        }
        let config = oci.blob(&manifest["config"]);
        assert_eq!(
            config["architecture"], arch.arch,
            "config architecture: {what}"
        );
        assert_eq!(config["os"], "linux", "config os: {what}");
        assert_eq!(
            config["variant"].as_str(),
            variant,
            "config and index agree on the variant: {what}"
        );
        check_service_config(&config["config"], &what);
        let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
        assert_eq!(diff_ids.len(), layers.len(), "{what}");
        base_layers.push(diff_ids[0].clone());
    }
    // Each platform was built on its own platform's base image.
    assert_ne!(
        base_layers[0], base_layers[1],
        "amd64 and arm64 images start with the same layer: the base image was not resolved per platform"
    );

    // Into the image store, then each platform runs as itself.
    let loaded = run(engine.docker(["load", "-i", &tarball])).stdout;
    assert!(loaded.contains(&tag), "docker load: {loaded}");
    for arch in [&AMD64, &ARM64] {
        check_runs_as(engine, &tag, arch);
    }
    engine.remove_image(&tag);
}

/// `--platform linux/arm64` alone: a plain arm64 image, loaded into the image store, that runs
/// (under QEMU) with arm64 binaries and the service's config.
#[test]
fn quickstart_arm64_only() {
    let test = "quickstart_arm64_only";
    let Some(engine) = engine(test) else { return };
    let tag = engine.unique_tag("quickstart-arm64");
    let args = [
        "--network=host",
        "--platform",
        ARM64.platform,
        "-f",
        &stack(),
        "--target",
        "api",
        "-t",
        &tag,
        &root(),
    ];
    if engine.is_old() {
        // The legacy image store holds one platform per name: no arm64 python:3.12-slim, and
        // nothing to pull here. The frontend names the image and the platform.
        let failed = engine
            .try_buildx_build(&args)
            .expect_err("no linux/arm64 base image on the old engine");
        let err = &failed.output.stderr;
        assert!(
            err.contains(
                "cannot resolve base image `docker.io/library/python:3.12-slim` for linux/arm64"
            ),
            "{err}"
        );
        return;
    }
    build(engine, &args);
    let inspect = engine.image_inspect(&tag);
    assert_eq!(inspect["Architecture"], "arm64", "{inspect:#}");
    assert_eq!(inspect["Os"], "linux", "{inspect:#}");
    check_service_config(&inspect["Config"], "arm64 image");
    check_runs_as(engine, &tag, &ARM64);
    engine.remove_image(&tag);
}
