//! Standalone BuildKit v0.32.2 behind buildx's remote driver (`eval "$(scripts/buildkit.sh)"`):
//! registry and local cache round trips with a pruned builder in between, multi-platform pushes
//! (index + attestation manifests), and the two-node builder (one node per platform) against
//! the one-node builder. Skipped (loudly) without that setup; scripts/test-buildkit.sh runs it
//! with `LAYERSTACK_REQUIRE_BUILDKIT=1`, where a missing setup fails.
//!
//! The tests prune the native buildkitd's whole cache, so they take a lock and run one at a
//! time; they never touch the shared dockerd's cache.

use std::sync::Mutex;

use integration_tests::builder::Buildkit;
use integration_tests::{Build, Context, Engine, Vertex, frontend_image, nonce};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const PLATFORMS: &str = "linux/amd64,linux/arm64";

fn setup(test: &str) -> Option<(&'static Engine, Buildkit)> {
    let bk = Buildkit::or_skip(test)?;
    let engine = integration_tests::engine_with_frontend(test)?;
    Some((engine, bk))
}

/// A stack with a base layer (apt), a service (pip, a copy, config) and its Dockerfile twin:
/// the same steps in the same order. `marker` makes the copied file new to every cache.
fn contexts(marker: &str) -> (Context, Context) {
    let stack = format!(
        "# syntax={}\n\
         [stack]\nname = \"cachetwin\"\ndefault = \"app\"\n\n\
         [layers.base]\nfrom = \"python:3.12-slim\"\napt = [\"file\"]\n\n\
         [services.app]\nfrom = \"base\"\npip = [\"six==1.16.0\"]\ncopy = [\"app\"]\n\
         env = {{ APP_MARKER = \"{marker}\" }}\ncmd = [\"python3\", \"-c\", \"import six\"]\n",
        frontend_image()
    );
    let dockerfile = "FROM python:3.12-slim\n\
         RUN apt-get update && apt-get install -y --no-install-recommends file\n\
         RUN pip install six==1.16.0\n\
         COPY app /app/app\n";
    let app = format!("print('{marker}')\n");
    (
        Context::new()
            .file("stack.toml", &stack)
            .file("app/main.py", &app),
        Context::new()
            .file("Dockerfile", dockerfile)
            .file("app/main.py", &app),
    )
}

/// Steps that build the image (installs, cross-install resolve steps and the lock groups they
/// install, copies, RUN): what must come from the cache.
fn is_step(v: &Vertex) -> bool {
    let n = &v.name;
    n.contains("apt-get install")
        || n.contains("pip install")
        || n.contains(" lock group ")
        || n.contains("] copy ")
        || n.contains("] RUN ")
        || n.contains("] COPY ")
}

/// Build with `--cache-to CACHE_TO`, prune the builder, build again with `--cache-from
/// CACHE_FROM`: the second build.
fn round_trip(
    engine: &Engine,
    bk: &Buildkit,
    ctx: &Context,
    file: &str,
    platforms: &str,
    cache_to: &str,
    cache_from: &str,
) -> Build {
    let file = ctx.join(file);
    let common = [
        "--builder",
        bk.builder.as_str(),
        "--network=host",
        "--platform",
        platforms,
        "-f",
        file.as_str(),
    ];
    bk.prune();
    let mut first = common.to_vec();
    first.extend(["--cache-to", cache_to, ctx.path_str()]);
    let b1 = engine.buildx_build(&first);
    let ran = b1.progress.vertices.iter().filter(|v| is_step(v)).count();
    assert!(
        ran > 0,
        "the first build shows no steps:\n{}",
        b1.progress.summary()
    );
    bk.prune();
    let mut second = common.to_vec();
    second.extend(["--cache-from", cache_from, ctx.path_str()]);
    let b2 = engine.buildx_build(&second);
    eprintln!(
        "{file} ({platforms}) after the prune, with --cache-from {cache_from}:\n{}",
        b2.progress.summary()
    );
    b2
}

fn every_step_cached(build: &Build, what: &str, expected_steps: usize) {
    build.progress.assert_cached(what, is_step);
    let n = build
        .progress
        .vertices
        .iter()
        .filter(|v| is_step(v))
        .count();
    assert!(
        n >= expected_steps,
        "{what}: expected at least {expected_steps} steps, saw {n}:\n{}",
        build.progress.summary()
    );
}

fn registry_round_trip(test: &str, platforms: &str) {
    let Some((engine, bk)) = setup(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (stack, twin) = contexts(&nonce());
    let arches = platforms.split(',').count();
    for (ctx, file, what, steps) in [
        (&twin, "Dockerfile", "Dockerfile twin", 3 * arches),
        // apt and the copy per platform; pip once per platform, plus the cross-install's merge.
        (&stack, "stack.toml", "layerstack", 3 * arches),
    ] {
        let cache = bk.unique_ref(engine, &format!("cache-{what}"));
        let b = round_trip(
            engine,
            &bk,
            ctx,
            file,
            platforms,
            &format!("type=registry,ref={cache},mode=max"),
            &format!("type=registry,ref={cache}"),
        );
        every_step_cached(&b, what, steps);
    }
}

/// The CI cache miss: two platforms, `--cache-to type=registry,mode=max`, a pruned
/// builder, `--cache-from`. The Dockerfile twin gets every step from the cache, and so must
/// the stack: the cross-install probe solved without the cache imports used to re-run apt on
/// both platforms, and the probe itself, outside the image's graph, was in no cache export.
#[test]
fn registry_cache_round_trip_two_platforms_every_step_cached() {
    registry_round_trip(
        "registry_cache_round_trip_two_platforms_every_step_cached",
        PLATFORMS,
    );
}

#[test]
fn registry_cache_round_trip_one_platform_every_step_cached() {
    registry_round_trip(
        "registry_cache_round_trip_one_platform_every_step_cached",
        "linux/amd64",
    );
}

/// The same with a local cache directory (`type=local`).
#[test]
fn local_cache_round_trip_two_platforms_every_step_cached() {
    let test = "local_cache_round_trip_two_platforms_every_step_cached";
    let Some((engine, bk)) = setup(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (stack, twin) = contexts(&nonce());
    for (ctx, file, what) in [
        (&twin, "Dockerfile", "Dockerfile twin"),
        (&stack, "stack.toml", "layerstack"),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let dir = dir.path().join("cache");
        let dir = dir.to_string_lossy();
        let b = round_trip(
            engine,
            &bk,
            ctx,
            file,
            PLATFORMS,
            &format!("type=local,dest={dir},mode=max"),
            &format!("type=local,src={dir}"),
        );
        every_step_cached(&b, what, 6);
    }
}

/// Per platform, sorted by architecture: (architecture, config digest, layer digests) of an
/// index pushed to the registry. Also checks the shape a multi-platform push has: one image
/// manifest per platform (linux/amd64, linux/arm64), each with a config of its architecture and
/// a provenance attestation manifest pointing at it.
fn pushed_images(bk: &Buildkit, reference: &str) -> Images {
    let (repo, tag) = repo_tag(bk, reference);
    let index = bk.manifest(repo, tag);
    let manifests = index["manifests"].as_array().expect("an index");
    let mut images = vec![];
    let mut attested = vec![];
    for m in manifests {
        let digest = m["digest"].as_str().unwrap();
        let annotations = &m["annotations"];
        if annotations["vnd.docker.reference.type"] == "attestation-manifest" {
            let subject = annotations["vnd.docker.reference.digest"].as_str().unwrap();
            attested.push(subject.to_string());
            let att = bk.manifest(repo, digest);
            assert!(
                att["layers"][0]["annotations"]["in-toto.io/predicate-type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("https://slsa.dev/provenance/")),
                "attestation of {reference}: {att}"
            );
            continue;
        }
        let arch = m["platform"]["architecture"].as_str().unwrap().to_string();
        let manifest = bk.manifest(repo, digest);
        let config = manifest["config"]["digest"].as_str().unwrap().to_string();
        assert_eq!(
            bk.blob_json(repo, &config)["architecture"],
            arch.as_str(),
            "{reference}"
        );
        let layers = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect();
        images.push((digest.to_string(), arch, config, layers));
    }
    images.sort_by(|a, b| a.1.cmp(&b.1));
    let archs: Vec<&str> = images.iter().map(|i| i.1.as_str()).collect();
    assert_eq!(
        archs,
        ["amd64", "arm64"],
        "platforms of {reference}: {index}"
    );
    for (digest, arch, ..) in &images {
        assert!(
            attested.contains(digest),
            "{reference}: no attestation manifest for the {arch} image {digest}: {index}"
        );
    }
    images
        .into_iter()
        .map(|(_, arch, config, layers)| (arch, config, layers))
        .collect()
}

/// `REGISTRY/REPO:TAG` → (REPO, TAG).
fn repo_tag<'a>(bk: &Buildkit, reference: &'a str) -> (&'a str, &'a str) {
    reference
        .strip_prefix(&format!("{}/", bk.registry))
        .and_then(|r| r.rsplit_once(':'))
        .unwrap_or_else(|| panic!("not a reference into {}: {reference}", bk.registry))
}

/// The paths in a layer blob of REPO (a gzipped tar), sorted.
fn layer_files(bk: &Buildkit, repo: &str, digest: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let blob = dir.path().join("layer.tar.gz");
    let url = format!("http://{}/v2/{repo}/blobs/{digest}", bk.registry);
    let mut get = std::process::Command::new("curl");
    get.args(["-fsSL", "--max-time", "120", "-o"])
        .arg(&blob)
        .arg(&url);
    integration_tests::run(get);
    let mut list = std::process::Command::new("tar");
    list.arg("-tzf").arg(&blob);
    let mut files: Vec<String> = integration_tests::run(list)
        .stdout
        .lines()
        .map(str::to_string)
        .collect();
    files.sort();
    files
}

/// `--push` of a two-platform build: an index with an image manifest per platform and a
/// provenance attestation manifest for each, configs of the right architecture.
#[test]
fn a_two_platform_push_has_an_index_and_attestation_manifests() {
    let test = "a_two_platform_push_has_an_index_and_attestation_manifests";
    let Some((engine, bk)) = setup(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (stack, _) = contexts(&nonce());
    let image = format!("{}:1", bk.unique_ref(engine, "push"));
    let file = stack.join("stack.toml");
    engine.buildx_build(&[
        "--builder",
        &bk.builder,
        "--network=host",
        "--platform",
        PLATFORMS,
        "-f",
        &file,
        "-t",
        &image,
        "--push",
        stack.path_str(),
    ]);
    let images = pushed_images(&bk, &image);
    for (arch, _, layers) in &images {
        // base image layer(s), apt, pip, copy.
        assert!(layers.len() >= 4, "{arch}: {layers:?}");
    }
}

/// (architecture, config digest, layer digests) per platform.
type Images = Vec<(String, String, Vec<String>)>;

/// Build with cache export on the one-node builder, then on the two-node builder (each
/// platform on its own node, the frontend seeing one platform per node) importing that cache;
/// returns both pushed references and images.
fn one_node_then_two(
    engine: &Engine,
    bk: &Buildkit,
    extra: &[&str],
) -> ((String, Images), (String, Images)) {
    let (stack, _) = contexts(&nonce());
    let file = stack.join("stack.toml");
    let cache = bk.unique_ref(engine, "nodes-cache");
    let one = format!("{}:1", bk.unique_ref(engine, "one-node"));
    let two = format!("{}:1", bk.unique_ref(engine, "two-nodes"));
    let cache_to = format!("type=registry,ref={cache},mode=max");
    let cache_from = format!("type=registry,ref={cache}");
    for (builder, image, cache_arg, cache_val) in [
        (&bk.builder, &one, "--cache-to", &cache_to),
        (&bk.nodes_builder, &two, "--cache-from", &cache_from),
    ] {
        let mut args = vec![
            "--builder",
            builder.as_str(),
            "--network=host",
            "--platform",
            PLATFORMS,
            "-f",
            file.as_str(),
        ];
        // Reproducible configs: without it `created` is when each node made its result.
        args.extend_from_slice(&["--build-arg", "SOURCE_DATE_EPOCH=1700000000"]);
        args.extend_from_slice(extra);
        args.extend([
            cache_arg,
            cache_val.as_str(),
            "-t",
            image.as_str(),
            "--push",
            stack.path_str(),
        ]);
        let b = engine.buildx_build(&args);
        eprintln!("{builder}:\n{}", b.progress.summary());
    }
    let (i1, i2) = (pushed_images(bk, &one), pushed_images(bk, &two));
    ((one, i1), (two, i2))
}

/// Every step of the stack has the same definition on a node of its own as on one node for all
/// platforms (here with emulated pip installs, `LAYERSTACK_CROSS=false`, whose graph does not
/// depend on the build platform): the two-node build finds every step in the one-node build's
/// cache, and with SOURCE_DATE_EPOCH both push the same image, per platform the same config
/// and layers.
#[test]
fn a_two_node_builder_gives_the_same_image_as_one_node() {
    let test = "a_two_node_builder_gives_the_same_image_as_one_node";
    let Some((engine, bk)) = setup(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ((_, one), (_, two)) =
        one_node_then_two(engine, &bk, &["--build-arg", "LAYERSTACK_CROSS=false"]);
    assert_eq!(one, two, "one node vs two nodes");
}

/// With cross-installs on (the default), the arm64 node builds natively while the one node
/// cross-installs arm64's pip step on amd64: amd64 is the same image, arm64 the same up to that
/// step (base and apt layers, from the cache), and its pip layer holds the same package files.
#[test]
fn a_two_node_builder_installs_natively_what_one_node_cross_installs() {
    let test = "a_two_node_builder_installs_natively_what_one_node_cross_installs";
    let Some((engine, bk)) = setup(test) else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ((one_ref, one), (two_ref, two)) = one_node_then_two(engine, &bk, &[]);
    assert_eq!(one[0], two[0], "amd64: one node vs two nodes");
    let (a, b) = (&one[1].2, &two[1].2);
    assert_eq!(a.len(), b.len(), "arm64 layers: {a:?} vs {b:?}");
    let pip = a.len() - 2; // …, apt, pip, copy
    assert_eq!(a[..pip], b[..pip], "arm64: the layers below the pip step");
    // The installed distribution, file by file. (Not byte-identical layers: pip run natively
    // also writes the bytecode of the interpreter's own modules it imported, and the
    // cross-install records the wheel it installed from in direct_url.json.)
    let dist = |reference: &str, digest: &str| -> Vec<String> {
        layer_files(&bk, repo_tag(&bk, reference).0, digest)
            .into_iter()
            .filter(|f| f.starts_with("usr/local/"))
            .filter_map(|f| f.split_once("/dist-packages/").map(|(_, p)| p.to_string()))
            .filter(|f| !f.is_empty() && !f.ends_with("/direct_url.json"))
            .collect()
    };
    let (da, db) = (dist(&one_ref, &a[pip]), dist(&two_ref, &b[pip]));
    assert!(da.iter().any(|f| f == "six.py"), "{da:?}");
    assert_eq!(
        da, db,
        "arm64: the pip layer's dist-packages, one node vs two nodes"
    );
}
