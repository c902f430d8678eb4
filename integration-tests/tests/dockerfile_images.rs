//! Images defined by a Dockerfile (`dockerfile = …`), built in the same graph by BuildKit's
//! Dockerfile frontend: a Dockerfile image (its own context directory with a `.dockerignore`,
//! a build arg, a target stage) is the `from` of one service and the source of an artifact
//! copied into another; its image config (ENV, WORKDIR) reaches the service built on it. A
//! missing Dockerfile and a target stage the Dockerfile does not have fail with the stack
//! line that names them; a failing RUN in it, with the Dockerfile's line. `--call targets` and
//! `outline` list it, and one `docker buildx bake` of the three images runs its steps once.

use std::process::Command;

use integration_tests::{Context, Engine, frontend_image, repo_root};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

/// Removes the tags when the test ends, whatever happens.
struct Tags<'a>(&'a Engine, Vec<String>);

impl Drop for Tags<'_> {
    fn drop(&mut self) {
        for t in &self.1 {
            self.0.remove_image(t);
        }
    }
}

const DOCKERFILE: &str = r#"FROM debian:bookworm-slim AS base
ARG GREETING=unset
RUN echo "greeting $GREETING" > /opt/greeting.txt
COPY . /opt/ctx/

FROM base AS final
ENV TOOL_HOME=/opt/tool
WORKDIR /opt/tool
RUN echo "final stage" > /opt/tool/stage.txt

FROM base AS other
RUN echo "other stage" > /opt/other.txt
"#;

const STACK: &str = r#"# syntax=FRONTEND
[args]
GREETING = "hello-NONCE"

[layers.tool]
description = "a tool image from its own Dockerfile"
dockerfile = { file = "services/tool/Dockerfile", target = "final", args = { GREETING = "${GREETING}" } }

[services.api]
from = "tool"
env = { API = "yes" }
copy = [{ src = "app.txt", dest = "/srv/app.txt" }]
run = ["cat /opt/greeting.txt /opt/tool/stage.txt > /srv/from-base.txt"]
cmd = ["sh", "-c", "cat /srv/from-base.txt /srv/app.txt; echo TOOL_HOME=$TOOL_HOME API=$API PWD=$(pwd); ls /opt/ctx"]

[services.worker]
from = "debian:bookworm-slim"
copy = [{ from = "tool", src = "/opt/greeting.txt", dest = "/srv/greeting.txt" }]
cmd = ["sh", "-c", "cat /srv/greeting.txt; test -e /opt/tool/stage.txt && echo LEAK || echo only-the-artifact"]
"#;

fn context(nonce: &str, stack: &str) -> Context {
    Context::new()
        .file("stack.toml", stack)
        .file("app.txt", "app file\n")
        .file("services/tool/Dockerfile", DOCKERFILE)
        .file("services/tool/tool.conf", "conf\n")
        .file("services/tool/ignored.txt", "must not be in the context\n")
        .file("services/tool/.dockerignore", "ignored.txt\n")
        .file("not-in-tool-context.txt", nonce)
}

fn stack(nonce: &str) -> String {
    STACK
        .replace("FRONTEND", &frontend_image())
        .replace("NONCE", nonce)
}

/// `cargo run -q -p llb-gen -- ARGS` in `cwd`: (success, stdout + stderr).
fn llb_gen(args: &[&str], cwd: &std::path::Path) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "-q", "--manifest-path"])
        .arg(repo_root().join("Cargo.toml"))
        .args(["-p", "llb-gen", "--"])
        .args(args)
        .current_dir(cwd);
    let out = cmd.output().expect("cargo runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_dockerfile_image_is_a_base_and_an_artifact_source() {
    let Some(engine) = engine("a_dockerfile_image_is_a_base_and_an_artifact_source") else {
        return;
    };
    let nonce = integration_tests::nonce();
    let ctx = context(&nonce, &stack(&nonce));

    // Offline, the Dockerfile image is listed and planned, but no LLB is made up for it.
    let (ok, targets) = llb_gen(&["targets", "stack.toml"], ctx.path());
    assert!(
        ok && targets.contains("tool") && targets.contains("api"),
        "{targets}"
    );
    let (ok, plan) = llb_gen(&["plan", "stack.toml"], ctx.path());
    assert!(ok, "{plan}");
    assert!(
        plan.contains("dockerfile services/tool/Dockerfile --target final"),
        "{plan}"
    );
    let (ok, llb) = llb_gen(&["llb", "--target", "api", "stack.toml"], ctx.path());
    assert!(!ok, "{llb}");
    assert!(
        llb.contains("Dockerfile frontend") && llb.contains("stack.toml:7"),
        "{llb}"
    );

    let mut tags = Tags(engine, vec![]);
    let mut build = |target: &str| {
        let tag = engine.unique_tag(&format!("dockerfile-{target}"));
        tags.1.push(tag.clone());
        let b = engine.buildx_build(&[
            "--network=host",
            "-f",
            &ctx.join("stack.toml"),
            "--target",
            target,
            "-t",
            &tag,
            ctx.path_str(),
        ]);
        (tag, b)
    };

    let (api, b) = build("api");
    // The Dockerfile's own steps ran in this build (its RUN with the stack's build arg).
    assert!(
        b.progress
            .vertex(&format!("[base 2/3] RUN echo \"greeting hello-{nonce}\""))
            .is_some(),
        "{}",
        b.progress.summary()
    );
    let out = engine.docker_run(&api, &[]);
    assert!(out.contains(&format!("greeting hello-{nonce}\n")), "{out}");
    assert!(out.contains("final stage\n"), "{out}");
    assert!(out.contains("app file\n"), "{out}");
    // The Dockerfile image's config is the service's base config: its ENV and WORKDIR.
    assert!(
        out.contains("TOOL_HOME=/opt/tool API=yes PWD=/opt/tool"),
        "{out}"
    );
    // Its context is its own directory, less what its .dockerignore leaves out.
    assert!(out.contains("tool.conf"), "{out}");
    assert!(out.contains("Dockerfile"), "{out}");
    assert!(!out.contains("ignored.txt"), "{out}");
    assert!(!out.contains("not-in-tool-context"), "{out}");
    let cfg = engine.image_inspect(&api);
    let env = cfg["Config"]["Env"].to_string();
    assert!(env.contains("TOOL_HOME=/opt/tool"), "{env}");

    // The artifact copied out of the Dockerfile image, nothing else of it.
    let (worker, _) = build("worker");
    let out = engine.docker_run(&worker, &[]);
    assert!(out.contains(&format!("greeting hello-{nonce}\n")), "{out}");
    assert!(out.contains("only-the-artifact"), "{out}");

    // The Dockerfile image alone is a target like any other.
    let (tool, _) = build("tool");
    let out = engine.docker_run(&tool, &["cat", "/opt/tool/stage.txt"]);
    assert_eq!(out, "final stage\n");
}

#[test]
fn a_missing_dockerfile_and_an_unknown_stage_fail_at_their_stack_line() {
    let Some(engine) = engine("a_missing_dockerfile_and_an_unknown_stage_fail_at_their_stack_line")
    else {
        return;
    };
    let nonce = integration_tests::nonce();
    for (edit, expect) in [
        (
            (
                "services/tool/Dockerfile\"",
                "services/tool/Dockerfile.missing\"",
            ),
            "services/tool/Dockerfile.missing",
        ),
        (
            ("target = \"final\"", "target = \"nosuchstage\""),
            "nosuchstage",
        ),
    ] {
        let ctx = context(&nonce, &stack(&nonce).replace(edit.0, edit.1));
        let b = engine
            .try_buildx_build(&[
                "--network=host",
                "-f",
                &ctx.join("stack.toml"),
                "--target",
                "worker",
                ctx.path_str(),
            ])
            .expect_err("the build fails");
        let err = &b.output.stderr;
        assert!(err.contains(expect), "{err}");
        // The error points at the `dockerfile` line of stack.toml.
        assert!(
            err.contains("stack.toml:7") || err.contains("layers.tool.dockerfile"),
            "{err}"
        );
    }
    // A failing RUN of the Dockerfile is shown at its Dockerfile line: the Dockerfile's
    // source map travels with its spliced steps.
    let ctx = context(&nonce, &stack(&nonce)).file(
        "services/tool/Dockerfile",
        "FROM debian:bookworm-slim AS final\nRUN echo failing-step && false\n",
    );
    let b = engine
        .try_buildx_build(&[
            "--progress=plain",
            "--network=host",
            "-f",
            &ctx.join("stack.toml"),
            "--target",
            "worker",
            ctx.path_str(),
        ])
        .expect_err("the RUN fails");
    let err = &b.output.stderr;
    assert!(
        err.contains("services/tool/Dockerfile:2") && err.contains(">>> RUN echo failing-step"),
        "{err}"
    );
}

#[test]
fn a_dockerfile_image_is_listed_by_targets_and_outlined() {
    let Some(engine) = engine("a_dockerfile_image_is_listed_by_targets_and_outlined") else {
        return;
    };
    let nonce = integration_tests::nonce();
    let ctx = context(&nonce, &stack(&nonce));
    let call = |what: &str, extra: &[&str]| {
        let mut cmd = engine.subrequest(what);
        cmd.args(extra)
            .args(["-f", &ctx.join("stack.toml"), ctx.path_str()]);
        let out = integration_tests::exec(&mut cmd, None).unwrap();
        assert!(out.status.success(), "{what}: {}", out.stderr);
        out.stdout
    };
    let targets = call("targets", &[]);
    assert!(
        targets.contains("tool") && targets.contains("a tool image from its own Dockerfile"),
        "{targets}"
    );
    let outline = call("outline", &["--target", "tool"]);
    assert!(
        outline.contains("TARGET:") && outline.contains("tool"),
        "{outline}"
    );
    assert!(
        outline
            .lines()
            .any(|l| l.starts_with("GREETING") && l.contains(&format!("hello-{nonce}"))),
        "{outline}"
    );
}

#[test]
fn one_bake_runs_the_dockerfile_steps_once_for_every_image_that_needs_them() {
    let Some(engine) =
        engine("one_bake_runs_the_dockerfile_steps_once_for_every_image_that_needs_them")
    else {
        return;
    };
    let nonce = integration_tests::nonce();
    let ctx = context(&nonce, &stack(&nonce));
    let (ok, bake) = llb_gen(&["bake", "stack.toml"], ctx.path());
    assert!(ok, "{bake}");
    let plan: serde_json::Value = serde_json::from_str(&bake).expect("bake JSON");
    let mut targets: Vec<&String> = plan["target"].as_object().unwrap().keys().collect();
    targets.sort();
    assert_eq!(targets, ["api", "tool", "worker"], "{bake}");
    std::fs::write(ctx.path().join("docker-bake.json"), &bake).unwrap();
    // No tags: the images stay in the build cache, nothing to remove afterwards.
    let out = engine.buildx_bake(&["-f", "docker-bake.json"], ctx.path());
    assert!(out.status.success(), "{}", out.stderr);
    let progress = integration_tests::Progress::parse(&out.stderr);
    // The Dockerfile's RUN (new: the nonce is in its build arg) is one vertex for the three
    // targets: the service built on it, the one copying from it and the image itself.
    let runs = progress.matching(&format!("RUN echo \"greeting hello-{nonce}\""));
    assert_eq!(runs.len(), 1, "{}", progress.summary());
}
