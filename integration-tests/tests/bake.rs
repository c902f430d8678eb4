//! Many services, one stack: `llb-gen bake` writes a docker-bake.json, `docker buildx bake`
//! builds every service concurrently on one engine, and each shared layer step runs once.

use std::process::Command;

use integration_tests::{Context, Engine, exec, frontend_image, repo_root, run};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

fn llb_gen(args: &[&str], cwd: &std::path::Path) -> String {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "-q", "--manifest-path"])
        .arg(repo_root().join("Cargo.toml"))
        .args(["-p", "llb-gen", "--"])
        .args(args)
        .current_dir(cwd);
    run(cmd).stdout
}

#[test]
fn bake_builds_all_services_and_runs_each_shared_step_once() {
    let Some(engine) = engine("bake_builds_all_services_and_runs_each_shared_step_once") else {
        return;
    };
    // A nonce makes the base steps new, so this run really executes them.
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
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

    let mut cmd = engine.docker([
        "buildx",
        "bake",
        "--progress=rawjson",
        "-f",
        "docker-bake.json",
    ]);
    cmd.current_dir(ctx.path());
    let out = exec(&mut cmd, None).expect("docker buildx bake runs");
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
