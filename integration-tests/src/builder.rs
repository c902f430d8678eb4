//! Running tests on another buildx builder than the engine's own: standalone BuildKit behind
//! buildx's remote driver (`scripts/buildkit.sh`), chosen with `LAYERSTACK_BUILDER=<name>`.
//!
//! On such a builder the frontend comes from a registry (the local one buildkitd mirrors
//! docker.io to; `scripts/buildkit.sh push` puts the frontend image there), and results stay in
//! BuildKit unless exported. [`Engine::buildx_build`](crate::Engine::buildx_build) therefore adds,
//! when `LAYERSTACK_BUILDER` is set: `--builder NAME`; `--load` for a single-platform build with
//! `-t` and no other output (so `docker run` and `docker image inspect` of the tag work as on
//! the docker driver). Whatever the builder: when `LAYERSTACK_FRONTEND_IMAGE` names another
//! image than `layerstack:dev`, a stack whose first line is `# syntax=layerstack:dev` (the
//! repository's own stacks) is built with `--build-arg BUILDKIT_SYNTAX=<that image>`.
//!
//! [`Buildkit`] is what the standalone-only tests (tests/buildkit.rs) need on top: both
//! builders, the registry, the buildkitd socket to prune.

use std::path::Path;
use std::time::Duration;

use crate::{DEFAULT_FRONTEND_IMAGE, Engine, display_command, exec, frontend_image, run};

/// `LAYERSTACK_BUILDER`, when set and not empty.
pub fn selected() -> Option<String> {
    std::env::var("LAYERSTACK_BUILDER")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The arguments [`crate::Engine::try_buildx_build`] runs with: ARGS plus what the selected
/// builder and frontend image need (see the module docs).
pub fn adjust(args: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let has = |flag: &str| {
        args.iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
    };
    if let Some(builder) = selected() {
        if !has("--builder") {
            out.extend(["--builder".to_string(), builder]);
        }
        if needs_load(args) {
            out.push("--load".to_string());
        }
    }
    let image = frontend_image();
    if image != DEFAULT_FRONTEND_IMAGE
        && !args.iter().any(|a| a.starts_with("BUILDKIT_SYNTAX="))
        && dockerfile(args).is_some_and(|f| names_default_frontend(&f))
    {
        out.extend([
            "--build-arg".to_string(),
            format!("BUILDKIT_SYNTAX={image}"),
        ]);
    }
    out.extend(args.iter().map(|a| a.to_string()));
    out
}

/// A single-platform build with `-t` and no output of its own: the tag must reach the engine's
/// image store (`--load`), as it does by itself on the docker driver.
fn needs_load(args: &[&str]) -> bool {
    let has = |flag: &str| {
        args.iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
    };
    let tagged = has("-t") || has("--tag");
    let exported = [
        "--push", "--load", "-o", "--output", "--call", "--check", "--print",
    ]
    .iter()
    .any(|f| has(f));
    let multi = args
        .iter()
        .zip(args.iter().skip(1))
        .any(|(a, b)| *a == "--platform" && b.contains(','))
        || args.iter().any(|a| {
            a.strip_prefix("--platform=")
                .is_some_and(|p| p.contains(','))
        });
    tagged && !exported && !multi
}

/// The build file of a `docker buildx build` command line: `-f`/`--file`, else
/// `CONTEXT/Dockerfile` (the last argument).
fn dockerfile(args: &[&str]) -> Option<String> {
    for (i, a) in args.iter().enumerate() {
        if *a == "-f" || *a == "--file" {
            return args.get(i + 1).map(|s| s.to_string());
        }
        if let Some(f) = a.strip_prefix("--file=") {
            return Some(f.to_string());
        }
    }
    let context = args.last()?;
    Some(
        Path::new(context)
            .join("Dockerfile")
            .to_string_lossy()
            .into_owned(),
    )
}

fn names_default_frontend(file: &str) -> bool {
    std::fs::read_to_string(file).is_ok_and(|s| {
        s.lines()
            .next()
            .and_then(|l| l.trim().strip_prefix("# syntax="))
            .is_some_and(|img| img.trim() == DEFAULT_FRONTEND_IMAGE)
    })
}

/// After the frontend image was built into the engine's store: with a selected builder or the
/// standalone BuildKit's environment (`LAYERSTACK_REGISTRY`), push it (with the base images) to
/// the registry buildkitd mirrors (`scripts/buildkit.sh push`).
pub(crate) fn publish_frontend() -> Result<(), String> {
    let registry = std::env::var("LAYERSTACK_REGISTRY").is_ok_and(|r| !r.is_empty());
    if selected().is_none() && !registry {
        return Ok(());
    }
    let mut cmd = std::process::Command::new(crate::repo_root().join("scripts/buildkit.sh"));
    cmd.arg("push");
    match exec(&mut cmd, Some(Duration::from_secs(600))) {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("{} failed:\n{}", display_command(&cmd), o.stderr)),
        Err(e) => Err(format!("{}: {e}", display_command(&cmd))),
    }
}

/// The standalone BuildKit that `eval "$(scripts/buildkit.sh)"` set up.
#[derive(Debug, Clone)]
pub struct Buildkit {
    /// The one-node builder (`LAYERSTACK_BK_BUILDER`).
    pub builder: String,
    /// The two-node builder, linux/amd64 + linux/arm64 (`LAYERSTACK_BK_NODES_BUILDER`).
    pub nodes_builder: String,
    /// `host:port` of the local registry (`LAYERSTACK_REGISTRY`).
    pub registry: String,
    /// The native buildkitd's address, for `buildctl --addr … prune` (`LAYERSTACK_BK_ADDR`).
    pub addr: String,
}

impl Buildkit {
    /// From the environment `scripts/buildkit.sh` exports, or None after a loud `SKIPPED`
    /// line. With `LAYERSTACK_REQUIRE_BUILDKIT=1` (scripts/test-buildkit.sh) a missing setup
    /// is a failure.
    pub fn or_skip(test: &str) -> Option<Buildkit> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let found = (|| {
            Some(Buildkit {
                builder: var("LAYERSTACK_BK_BUILDER")?,
                nodes_builder: var("LAYERSTACK_BK_NODES_BUILDER")?,
                registry: var("LAYERSTACK_REGISTRY")?,
                addr: var("LAYERSTACK_BK_ADDR")?,
            })
        })();
        if found.is_none() {
            let reason = "no standalone BuildKit (run: eval \"$(scripts/buildkit.sh)\"; \
                          scripts/test-buildkit.sh does)";
            if std::env::var("LAYERSTACK_REQUIRE_BUILDKIT").is_ok_and(|v| v == "1") {
                panic!("{test}: {reason}");
            }
            eprintln!("\n*** SKIPPED: {test}: {reason} ***\n");
        }
        found
    }

    /// `buildctl --addr ADDR prune --all`: the native buildkitd forgets its whole build cache
    /// (never the shared engine's).
    pub fn prune(&self) {
        let mut cmd = std::process::Command::new("buildctl");
        cmd.args(["--addr", &self.addr, "prune", "--all"]);
        run(cmd);
    }

    /// A repository name in the local registry no other test (or run) uses.
    pub fn unique_ref(&self, engine: &Engine, name: &str) -> String {
        let tag = engine.unique_tag(name);
        let tag = tag.trim_start_matches("layerstack-test/").replace(':', "-");
        format!("{}/layerstack-test/{tag}", self.registry)
    }

    /// A manifest or index from the registry (`REPO` without the registry, `REF` a tag or
    /// digest), with its digest.
    pub fn manifest(&self, repo: &str, reference: &str) -> serde_json::Value {
        let url = format!("http://{}/v2/{repo}/manifests/{reference}", self.registry);
        self.get_json(
            &url,
            &[
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.docker.distribution.manifest.v2+json",
            ],
        )
    }

    /// A JSON blob (an image config, an attestation) from the registry.
    pub fn blob_json(&self, repo: &str, digest: &str) -> serde_json::Value {
        self.get_json(
            &format!("http://{}/v2/{repo}/blobs/{digest}", self.registry),
            &[],
        )
    }

    fn get_json(&self, url: &str, accept: &[&str]) -> serde_json::Value {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-fsSL", "--max-time", "30"]);
        for a in accept {
            cmd.args(["-H", &format!("Accept: {a}")]);
        }
        cmd.arg(url);
        let out = run(cmd);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}):\n{}", out.stdout))
    }
}

#[cfg(test)]
mod tests {
    //! The argument rewriting, without an engine.
    use super::*;

    #[test]
    fn dockerfile_is_the_file_flag_or_the_context_dockerfile() {
        assert_eq!(
            dockerfile(&["-f", "a/stack.toml", "ctx"]).as_deref(),
            Some("a/stack.toml")
        );
        assert_eq!(
            dockerfile(&["--file=b.toml", "ctx"]).as_deref(),
            Some("b.toml")
        );
        assert_eq!(
            dockerfile(&["--network=host", "ctx"]).as_deref(),
            Some("ctx/Dockerfile")
        );
    }

    #[test]
    fn load_only_single_platform_tags_without_an_output() {
        assert!(needs_load(&["-t", "x", "ctx"]));
        assert!(needs_load(&["--platform", "linux/arm64", "--tag=x", "ctx"]));
        assert!(!needs_load(&["ctx"]));
        assert!(!needs_load(&["-t", "x", "--push", "ctx"]));
        assert!(!needs_load(&[
            "-t",
            "x",
            "--output=type=oci,dest=a.tar",
            "ctx"
        ]));
        assert!(!needs_load(&[
            "-t",
            "x",
            "--platform",
            "linux/amd64,linux/arm64",
            "ctx"
        ]));
        assert!(!needs_load(&["-t", "x", "--call", "outline", "ctx"]));
    }
}
