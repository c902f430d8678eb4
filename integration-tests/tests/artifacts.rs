//! Artifacts between images: a build-only layer makes files once, two services copy them
//! (`copy = { from = … }`, a glob, chown, mode), `llb-gen bake` ships only the services, one
//! `docker buildx bake` builds both, and the artifact is one vertex that runs once.

use integration_tests::{Context, Engine, frontend_image, llb_gen};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

const STACK: &str = r#"# syntax=FRONTEND
[stack]
tags = ["layerstack-test/artifacts-${NAME}:${HASH}"]

[layers.base]
from = "debian:bookworm-slim"

# Stands in for compiling TA-Lib: makes a library (a versioned file and its symlink) and a
# tool, once.
[layers.talib]
build-only = true
from = "base"
run = ["""
echo BUILD-ARTIFACTS-NONCE
mkdir -p /out/lib /out/bin
echo 'demo library NONCE' > /out/lib/libdemo.so.1
ln -s libdemo.so.1 /out/lib/libdemo.so
printf '#!/bin/sh\necho hello from the artifact\n' > /out/bin/hello
chmod 0700 /out/bin/hello
"""]

[services.api]
from = "base"
user = { name = "app", uid = 1000 }
workdir = "/app"
copy = [{ from = "talib", src = "/out/lib/libdemo.so*", dest = "/usr/local/lib/", chown = "app", mode = "0750" }]
cmd = ["sh", "-c", "stat -c '%U %a %F %n' /usr/local/lib/libdemo.so /usr/local/lib/libdemo.so.1; cat /usr/local/lib/libdemo.so.1"]

[services.worker]
from = "debian:bookworm-slim"
copy = [
  { from = "talib", src = "/out/lib/libdemo.so*", dest = "/opt/lib/" },
  { from = "talib", src = "/out/bin/hello", dest = "/usr/local/bin/hello" },
]
cmd = ["sh", "-c", "stat -c '%u %a %n' /opt/lib/libdemo.so.1 /usr/local/bin/hello; cat /opt/lib/libdemo.so; hello"]
"#;

#[test]
fn an_artifact_from_a_build_only_layer_is_built_once_and_copied_into_two_services() {
    let Some(engine) =
        engine("an_artifact_from_a_build_only_layer_is_built_once_and_copied_into_two_services")
    else {
        return;
    };
    // A nonce makes the build-only layer new, so this run really executes it.
    let nonce = integration_tests::nonce();
    let stack = STACK
        .replace("FRONTEND", &frontend_image())
        .replace("NONCE", &nonce);
    let ctx = Context::new().file("stack.toml", &stack);

    // The build-only layer is no bake target; the services and the base are.
    let bake = llb_gen(&["bake", "stack.toml"], ctx.path());
    std::fs::write(ctx.path().join("docker-bake.json"), &bake).unwrap();
    let plan: serde_json::Value = serde_json::from_str(&bake).expect("bake JSON");
    let mut targets: Vec<&String> = plan["target"].as_object().unwrap().keys().collect();
    targets.sort();
    assert_eq!(targets, ["api", "base", "worker"], "{bake}");
    assert_eq!(
        plan["group"]["default"]["targets"],
        serde_json::json!(["api", "worker"])
    );

    // Both services in one session.
    let out = engine.buildx_bake(&["-f", "docker-bake.json"], ctx.path());
    assert!(out.status.success(), "bake failed:\n{}", out.stderr);
    let progress = integration_tests::Progress::parse(&out.stderr);
    // (bake prefixes each vertex name with the target that reported it first: `[api layer …`.)
    // The build-only layer ran once for both services…
    let runs = progress.matching("layer talib 1/1] run");
    assert_eq!(runs.len(), 1, "{}", progress.summary());
    assert_eq!(
        runs[0]
            .logs
            .matches(&format!("BUILD-ARTIFACTS-{nonce}"))
            .count(),
        1,
        "{}",
        runs[0].logs
    );
    // …and the library's copy out of it is one vertex (one digest) shared by api and worker,
    // although they copy it to other places with other owners and modes.
    let lib = progress.matching("layer talib] artifact /out/lib/libdemo.so*");
    assert_eq!(lib.len(), 1, "{}", progress.summary());
    assert!(!lib[0].cached, "{:?}", lib[0]);
    assert_eq!(
        progress
            .matching("layer talib] artifact /out/bin/hello")
            .len(),
        1,
        "{}",
        progress.summary()
    );
    // The services' own copies are theirs.
    assert_eq!(
        progress
            .matching("copy --from=talib /out/lib/libdemo.so*")
            .len(),
        2
    );

    let tag = |s: &str| plan["target"][s]["tags"][0].as_str().unwrap().to_string();
    let api = engine.docker_run(&tag("api"), &[]);
    // The glob took the versioned file and its symlink (followed, as Dockerfile COPY does),
    // owned by the service's user, with the mode asked for.
    assert!(
        api.contains("app 750 regular file /usr/local/lib/libdemo.so\n"),
        "{api}"
    );
    assert!(
        api.contains("app 750 regular file /usr/local/lib/libdemo.so.1\n"),
        "{api}"
    );
    assert!(api.contains(&format!("demo library {nonce}")), "{api}");
    let worker = engine.docker_run(&tag("worker"), &[]);
    // Without chown and mode, files keep the owner and mode they had in the builder.
    assert!(worker.contains("0 644 /opt/lib/libdemo.so.1\n"), "{worker}");
    assert!(worker.contains("0 700 /usr/local/bin/hello\n"), "{worker}");
    assert!(
        worker.contains(&format!("demo library {nonce}")),
        "{worker}"
    );
    assert!(worker.contains("hello from the artifact"), "{worker}");
    // Nothing of the builder but the artifacts: its /out is not in the services.
    let ls = engine.docker_run(&tag("worker"), &["sh", "-c", "ls /out 2>&1 || true"]);
    assert!(ls.contains("No such file"), "{ls}");
    for s in ["api", "worker"] {
        engine.remove_image(&tag(s));
    }
}

#[test]
fn a_build_only_layer_is_still_buildable_by_name() {
    let Some(engine) = engine("a_build_only_layer_is_still_buildable_by_name") else {
        return;
    };
    let stack = STACK
        .replace("FRONTEND", &frontend_image())
        .replace("NONCE", &integration_tests::nonce());
    let ctx = Context::new().file("stack.toml", &stack);
    let (tag, _) = engine.build_target("artifacts", ctx.path(), "talib", &[]);
    let out = engine.docker_run(&tag, &["cat", "/out/lib/libdemo.so.1"]);
    engine.remove_image(&tag);
    assert!(out.contains("demo library"), "{out}");
}
