//! Named directory contexts through a real buildx (`--build-context svc-api=DIR`, frontend
//! opt `context:svc-api=local:svc-api`): a stack reads them as `svc-api:PATH` (requirements
//! and the files they include, local packages, run contexts) and `copy = { context = … }`,
//! each with its own `.dockerignore`; a stack naming a context the build was not given fails
//! at its line with the `--build-context` to pass.

use integration_tests::pyindex::{PackageIndex, Wheel};
use integration_tests::{Context, engine_with_frontend, frontend_image};

fn stack(index: &str) -> String {
    format!(
        "# syntax={}\n\
         [stack]\ninstall-env = {{ PIP_TRUSTED_HOST = \"127.0.0.1\" }}\n\
         [services.app]\nfrom = \"python:3.12-slim\"\nworkdir = \"/srv\"\nindex-url = \"{index}\"\n\
         requirements = [\"svc-api:reqs/api.txt\"]\n\
         run = [{{ cmd = \"cat @svc-api/tools/stamp.txt > /stamp.txt\", context = [\"svc-api:tools\"] }}]\n\
         copy = [\n  {{ context = \"svc-api\", src = \"app/\", dest = \"/srv/api/\" }},\n  \"main.py\",\n]\n",
        frontend_image()
    )
}

fn api_dir() -> Context {
    Context::new()
        .file("reqs/api.txt", "-r base.txt\n")
        .file("reqs/base.txt", "lsdemo-a==1.0\n")
        .file("app/server.py", "print('api')\n")
        .file("app/secret.env", "TOKEN=1\n")
        .file("tools/stamp.txt", "stamped\n")
        // The named context's own .dockerignore; the main context's does not apply to it.
        .file(".dockerignore", "app/secret.env\n")
}

#[test]
fn a_named_directory_context_feeds_copies_requirements_and_runs() {
    let Some(engine) =
        engine_with_frontend("a_named_directory_context_feeds_copies_requirements_and_runs")
    else {
        return;
    };
    let index = PackageIndex::serve(&[Wheel::pure("lsdemo-a", "1.0")]);
    let ctx = Context::new()
        .file("stack.toml", &stack(&index.url()))
        .file("main.py", "print('main')\n")
        // Excludes in the main context never touch the named one.
        .file(".dockerignore", "app\n");
    let api = api_dir();
    let named = format!("svc-api={}", api.path_str());
    let (tag, build) =
        engine.build_target("named", ctx.path(), "app", &["--build-context", &named]);
    assert!(
        build.vertex("load context svc-api:reqs/api.txt").is_some(),
        "the named context is loaded by its own source:\n{}",
        build.progress.summary()
    );
    let out = engine.docker_run(
        &tag,
        &[
            "sh",
            "-c",
            "ls /srv/api; cat /stamp.txt; test -e /srv/main.py && echo main; \
             python3 -c 'import lsdemo_a; print(lsdemo_a.__version__)'; \
             ls -a /srv /run/layerstack 2>&1 | tr '\\n' ' '",
        ],
    );
    engine.remove_image(&tag);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"server.py"), "copied from svc-api: {out}");
    assert!(
        !out.contains("secret.env"),
        "svc-api's .dockerignore left secret.env out: {out}"
    );
    assert!(
        lines.contains(&"stamped"),
        "the run saw svc-api:tools: {out}"
    );
    assert!(
        lines.contains(&"main"),
        "the main context still works: {out}"
    );
    assert!(
        lines.contains(&"1.0"),
        "svc-api:reqs/api.txt and its -r base.txt installed: {out}"
    );
    assert!(
        !out.contains("@svc-api"),
        "staged files never reach the image: {out}"
    );
}

#[test]
fn a_context_the_build_was_not_given_is_a_located_error() {
    let Some(engine) = engine_with_frontend("a_context_the_build_was_not_given_is_a_located_error")
    else {
        return;
    };
    let ctx = Context::new()
        .file("stack.toml", &stack("http://127.0.0.1:9/simple"))
        .file("main.py", "print('main')\n");
    let file = ctx.join("stack.toml");
    let failed = engine
        .try_buildx_build(&["--progress=plain", "-f", &file, ctx.path_str()])
        .expect_err("the stack reads svc-api");
    let err = &failed.output.stderr;
    assert!(
        err.contains("the named build context `svc-api`, which this build was not given"),
        "{err}"
    );
    assert!(err.contains("--build-context svc-api=DIR"), "{err}");
    // Located: the requirements line of stack.toml.
    assert!(err.contains("stack.toml:8"), "{err}");

    // A file the named context's .dockerignore leaves out is reported as such.
    let api = Context::new()
        .file("reqs/api.txt", "lsdemo-a\n")
        .file("tools/stamp.txt", "x\n")
        .file("app/x.py", "\n")
        .file(".dockerignore", "reqs\n");
    let named = format!("svc-api={}", api.path_str());
    let failed = engine
        .try_buildx_build(&[
            "--progress=plain",
            "--build-context",
            &named,
            "-f",
            &file,
            ctx.path_str(),
        ])
        .expect_err("reqs/api.txt is ignored");
    let err = &failed.output.stderr;
    assert!(
        err.contains("`svc-api:reqs/api.txt` is not in the named build context `svc-api`"),
        "{err}"
    );
    assert!(
        err.contains("excluded by the .dockerignore of the context `svc-api`"),
        "{err}"
    );
}

/// `llb-gen bake --build-context svc-api=DIR` writes the target's `contexts` map, and
/// `docker buildx bake` sends it as `--build-context` does.
#[test]
fn bake_passes_a_targets_contexts_map() {
    let Some(engine) = engine_with_frontend("bake_passes_a_targets_contexts_map") else {
        return;
    };
    let nonce = integration_tests::nonce();
    let stack = format!(
        "# syntax={}\n[stack]\ntags = [\"layerstack-test/named-bake:{nonce}\"]\n\
         [services.web]\nfrom = \"debian:bookworm-slim\"\n\
         copy = [{{ context = \"svc-api\", src = \"app/\", dest = \"/srv/\" }}]\ncmd = [\"ls\", \"/srv\"]\n",
        frontend_image()
    );
    let ctx = Context::new().file("stack.toml", &stack);
    let api = Context::new()
        .file("app/server.py", "print('api')\n")
        .file("app/secret.env", "T=1\n")
        .file(".dockerignore", "app/secret.env\n");
    let named = format!("svc-api={}", api.path_str());
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.args(["run", "-q", "--manifest-path"])
        .arg(integration_tests::repo_root().join("Cargo.toml"))
        .args([
            "-p",
            "llb-gen",
            "--",
            "bake",
            "stack.toml",
            "--build-context",
            &named,
        ])
        .current_dir(ctx.path());
    let bake = integration_tests::run(cmd).stdout;
    let v: serde_json::Value = serde_json::from_str(&bake).expect("bake JSON");
    assert_eq!(
        v["target"]["web"]["contexts"]["svc-api"],
        api.path_str(),
        "{bake}"
    );
    std::fs::write(ctx.path().join("docker-bake.json"), &bake).unwrap();
    let allow = format!("fs.read={}", api.path_str());
    let mut cmd = engine.docker(["buildx", "bake", "--progress=plain"]);
    // buildx 0.17 and later ask for the entitlement to read a directory outside the working
    // directory; older ones (dockerd 26's 0.13) have no `--allow` and read it as they are.
    if engine.buildx_version() >= (0, 17) {
        cmd.args(["--allow", &allow]);
    }
    cmd.args(["-f", "docker-bake.json", "--load"])
        .current_dir(ctx.path());
    let out = integration_tests::exec(&mut cmd, None).expect("docker buildx bake runs");
    assert!(out.status.success(), "bake failed:\n{}", out.stderr);
    let tag = format!("layerstack-test/named-bake:{nonce}");
    let listed = engine.docker_run(&tag, &[]);
    engine.remove_image(&tag);
    assert_eq!(listed.trim(), "server.py", "{listed}");
}
