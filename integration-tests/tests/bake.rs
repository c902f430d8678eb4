//! Many services, one stack: `llb-gen bake` writes a docker-bake.json, `docker buildx bake`
//! builds every service concurrently on one engine, and each shared layer step runs once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use integration_tests::http::{self, Response};
use integration_tests::{Context, Engine, frontend_image, llb_gen, llb_gen_output};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

#[test]
fn bake_builds_all_services_and_runs_each_shared_step_once() {
    let Some(engine) = engine("bake_builds_all_services_and_runs_each_shared_step_once") else {
        return;
    };
    // A nonce makes the base steps new, so this run really executes them.
    let nonce = integration_tests::nonce();
    let stack = format!(
        "# syntax={}\n[stack]\ntags = [\"layerstack-test/bake-${{NAME}}:${{HASH}}\"]\n\
         [layers.base]\nfrom = \"debian:bookworm-slim\"\nrun = [\"echo BASE-STEP-{nonce} && sleep 2\"]\n\
         [layers.ml]\nfrom = \"base\"\nrun = [\"echo ML-STEP-{nonce} && sleep 2\"]\n\
         [services.ocr]\nfrom = \"ml\"\ncopy = [\"apps/ocr\"]\ncmd = [\"cat\", \"/apps/ocr/name\"]\n\
         [services.indexer]\nfrom = \"ml\"\ncopy = [\"apps/indexer\"]\ncmd = [\"cat\", \"/apps/indexer/name\"]\n\
         [services.retriever]\nfrom = \"ml\"\ncopy = [\"apps/retriever\"]\ncmd = [\"cat\", \"/apps/retriever/name\"]\n",
        frontend_image()
    );
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file("apps/ocr/name", "ocr\n")
        .file("apps/indexer/name", "indexer\n")
        .file("apps/retriever/name", "retriever\n");
    let bake = llb_gen(&["bake", "stack.toml"], ctx.path());
    std::fs::write(ctx.path().join("docker-bake.json"), &bake).unwrap();
    let plan: serde_json::Value = serde_json::from_str(&bake).expect("bake JSON");
    let services: Vec<String> = plan["group"]["default"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert_eq!(services, ["ocr", "indexer", "retriever"]);

    let out = engine.buildx_bake(&["-f", "docker-bake.json"], ctx.path());
    assert!(out.status.success(), "bake failed:\n{}", out.stderr);
    let progress = integration_tests::Progress::parse(&out.stderr);

    // One vertex per shared step, executed once: its output appears once.
    for step in [format!("BASE-STEP-{nonce}"), format!("ML-STEP-{nonce}")] {
        let vs = progress.matching(&step);
        assert_eq!(
            vs.len(),
            1,
            "{step}: expected one vertex for all three services, got {}:\n{}",
            vs.len(),
            progress.summary()
        );
        let v = vs[0];
        assert!(!v.cached, "{v:?}");
        assert_eq!(
            v.logs.matches(&step).count(),
            1,
            "{step} ran more than once:\n{}",
            v.logs
        );
    }
    // Every service got built and tagged from the template with its content hash.
    for s in &services {
        let tag = plan["target"][s]["tags"][0].as_str().unwrap().to_string();
        assert!(
            tag.starts_with(&format!("layerstack-test/bake-{s}:")),
            "{tag}"
        );
        assert_eq!(engine.docker_run(&tag, &[]).trim(), s);
        engine.remove_image(&tag);
    }
}

/// `llb-gen bake --network host` for a stack whose RUN step needs the host's network: it fetches
/// a token from a server on the host's 127.0.0.1, which the default build network cannot reach.
/// buildx 0.13 (the engine's) drops `network` from the JSON file and rejects `--set
/// '*.network=host'`; llb-gen says so and prints the way that works, `--format compose` baked
/// next to the JSON file: the network from the compose file, the groups from the JSON file.
#[test]
fn bake_network_host_reaches_the_build_through_a_compose_file() {
    let Some(engine) = engine("bake_network_host_reaches_the_build_through_a_compose_file") else {
        return;
    };
    let nonce = integration_tests::nonce();
    let fetched = Arc::new(AtomicUsize::new(0));
    let counter = fetched.clone();
    let token = format!("token-{nonce}");
    let body = token.clone();
    let port = http::serve(move |_, path| {
        if path == "/token" {
            counter.fetch_add(1, Ordering::SeqCst);
            Response::ok("text/plain", "no-store", body.clone().into_bytes())
        } else {
            Response::not_found()
        }
    });
    let stack = format!(
        r#"# syntax={frontend}
[stack]
tags = ["layerstack-test/bake-net-${{NAME}}:${{NONCE}}"]
[args]
NONCE = "{nonce}"
[layers.base]
from = "python:3.12-slim"
run = ["python3 -c \"import urllib.request; open('/token', 'wb').write(urllib.request.urlopen('http://127.0.0.1:{port}/token', timeout=10).read())\" # ${{NONCE}}"]
[services.app]
from = "base"
cmd = ["cat", "/token"]
"#,
        frontend = frontend_image(),
    );
    let ctx = Context::new().file("stack.toml", &stack);
    let json = llb_gen_output(&["bake", "stack.toml", "--network", "host"], ctx.path());
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).expect("bake JSON");
    assert_eq!(plan["target"]["app"]["network"], "host");
    let warning = &json.stderr;
    assert!(
        warning.contains("buildx before 0.17.0 ignores `network` in a bake file")
            && warning.contains(
                "llb-gen bake stack.toml --network host --format compose > docker-bake.network.yml"
            )
            && warning
                .contains("docker buildx bake -f docker-bake.json -f docker-bake.network.yml"),
        "{warning}"
    );
    std::fs::write(ctx.path().join("docker-bake.json"), &json.stdout).unwrap();
    let compose = llb_gen_output(
        &[
            "bake",
            "stack.toml",
            "--network",
            "host",
            "--format",
            "compose",
        ],
        ctx.path(),
    );
    assert_eq!(compose.stderr, "", "no warning for the compose file");
    std::fs::write(ctx.path().join("docker-bake.network.yml"), &compose.stdout).unwrap();
    let app = format!("layerstack-test/bake-net-app:{nonce}");
    let base = format!("layerstack-test/bake-net-base:{nonce}");

    let (major, minor) = engine.buildx_version();
    if (major, minor) >= (0, 17) {
        // The bake file's `network` is read; host networking needs the entitlement.
        let out = engine.buildx_bake(
            &["--allow", "network.host", "-f", "docker-bake.json"],
            ctx.path(),
        );
        assert!(out.status.success(), "bake failed:\n{}", out.stderr);
    } else {
        // What llb-gen warns about: the JSON file alone builds in the default network…
        let out = engine.buildx_bake(&["-f", "docker-bake.json"], ctx.path());
        let logs: String = integration_tests::Progress::parse(&out.stderr)
            .vertices
            .iter()
            .map(|v| v.logs.as_str())
            .collect();
        assert!(
            !out.status.success() && logs.contains("Connection refused"),
            "buildx {major}.{minor} was expected to drop `network` (llb-gen's warning says so); \
             it built:\n{}",
            out.stderr
        );
        assert_eq!(fetched.load(Ordering::SeqCst), 0);
        // …and `--set '*.network=host'` is no way out.
        let out = engine.buildx_bake(
            &["-f", "docker-bake.json", "--set", "*.network=host"],
            ctx.path(),
        );
        assert!(
            !out.status.success() && out.stderr.contains("unknown key: network"),
            "{}",
            out.stderr
        );
        // The way that works: both files.
        let out = engine.buildx_bake(
            &["-f", "docker-bake.json", "-f", "docker-bake.network.yml"],
            ctx.path(),
        );
        assert!(out.status.success(), "bake failed:\n{}", out.stderr);
    }
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        1,
        "the RUN step reached the host"
    );
    assert_eq!(engine.docker_run(&app, &[]), token);
    assert!(
        !engine.image_exists(&base),
        "the JSON file's `default` group (the services) was built, not every compose service"
    );
    engine.remove_image(&app);
}
