//! Errors through a real buildx: a failing step shows the stack.toml lines that declared it
//! (source map), frontend-side errors show the file excerpt and every diagnostic, and the
//! frontend always answers (never a protocol error or a hang).

use integration_tests::{Context, Engine, frontend_image};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

/// Build `stack` (a fresh context holding only it) and expect the build to fail.
fn fails(engine: &Engine, stack: &str, extra: &[&str], why: &str) -> integration_tests::Build {
    let ctx = Context::new().file("stack.toml", stack);
    let file = ctx.join("stack.toml");
    let mut args = vec!["--progress=plain"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-f", &file, ctx.path_str()]);
    *engine.try_buildx_build(&args).expect_err(why)
}

fn header() -> String {
    format!("# syntax={}\n", frontend_image())
}

#[test]
fn a_failing_step_points_at_its_stack_toml_line() {
    let Some(engine) = engine("a_failing_step_points_at_its_stack_toml_line") else {
        return;
    };
    let stack = format!(
        "{}[layers.base]\nfrom = \"debian:bookworm-slim\"\nrun = [\n  \"echo preparing\",\n  \"echo about to fail && exit 3\",\n]\n\n[services.app]\nfrom = \"base\"\n",
        header()
    );
    let failed = fails(engine, &stack, &[], "the step exits 3");
    let err = &failed.output.stderr;
    assert!(
        err.contains("[layer base 2/2] run echo about to fail && exit 3"),
        "{err}"
    );
    assert!(err.contains("exit code: 3"), "{err}");
    if engine.is_old() {
        // dockerd 20.10 does not pass BuildKit's error details (errdefs.Source) to the client:
        // buildx shows no excerpt there, not even for a plain Dockerfile.
        return;
    }
    // buildx prints the source excerpt from the Definition's source map.
    assert!(err.contains("stack.toml:6"), "{err}");
    assert!(
        err.contains(">>>   \"echo about to fail && exit 3\","),
        "{err}"
    );
}

#[test]
fn invalid_stacks_report_every_error_with_the_file_excerpt() {
    let Some(engine) = engine("invalid_stacks_report_every_error_with_the_file_excerpt") else {
        return;
    };
    let stack = format!(
        "{}[services.app]\nfrom = \"debian:bookworm-slim\"\npipp = [\"x\"]\ncopy = 3\n",
        header()
    );
    let failed = fails(engine, &stack, &[], "the stack is invalid");
    let err = &failed.output.stderr;
    assert!(err.contains("stack.toml:4:1: error: services.app.pipp: unknown key `pipp` in `services.app` (did you mean `pip`?)"), "{err}");
    assert!(
        err.contains("stack.toml:5:8: error: services.app.copy: expected a list of paths"),
        "{err}"
    );
    if engine.is_old() {
        // No excerpt through dockerd 20.10 (error details are dropped); the lines above name
        // file, line and column.
        return;
    }
    assert!(
        err.contains(">>> pipp = [\"x\"]"),
        "the excerpt marks the first error's line:\n{err}"
    );
}

#[test]
fn an_unknown_target_lists_the_valid_ones() {
    let Some(engine) = engine("an_unknown_target_lists_the_valid_ones") else {
        return;
    };
    let stack = format!(
        "{}[layers.base]\nfrom = \"debian:bookworm-slim\"\n[services.api]\nfrom = \"base\"\n",
        header()
    );
    let failed = fails(engine, &stack, &["--target", "apii"], "no such target");
    let line = failed.error_line().unwrap_or_default().to_string();
    let err = &failed.output.stderr;
    assert!(
        err.contains("target `apii` is not a layer or service"),
        "{line}\n{err}"
    );
    assert!(err.contains("did you mean `api`?"), "{err}");
    assert!(
        err.contains("api (service)") && err.contains("base (layer)"),
        "{err}"
    );
}

#[test]
fn a_missing_base_image_names_the_stack_and_the_image() {
    let Some(engine) = engine("a_missing_base_image_names_the_stack_and_the_image") else {
        return;
    };
    let stack = format!(
        "{}[services.app]\nfrom = \"layerstack-test/does-not-exist:1\"\n",
        header()
    );
    let failed = fails(engine, &stack, &[], "the base cannot be resolved");
    let err = &failed.output.stderr;
    assert!(
        err.contains("cannot resolve base image `docker.io/layerstack-test/does-not-exist:1`"),
        "{err}"
    );
}

#[test]
fn missing_context_files_are_reported_before_any_install_runs() {
    let Some(engine) = engine("missing_context_files_are_reported_before_any_install_runs") else {
        return;
    };
    let stack = format!(
        "{}[layers.base]\nfrom = \"python:3.12-slim\"\napt = [\"jq\"]\nrequirements = [\"requirements.txt\"]\n\
         [services.app]\nfrom = \"base\"\ncopy = [\"src\", \"secret.env\"]\n",
        header()
    );
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file(".dockerignore", "secret.env\n")
        .file("secret.env", "x\n");
    let failed = engine
        .try_buildx_build(&[
            "--progress=rawjson",
            "--network=host",
            "-f",
            &ctx.join("stack.toml"),
            ctx.path_str(),
        ])
        .expect_err("files are missing");
    let err = failed.output.stderr.clone();
    assert!(err.contains("stack.toml:5:17: error: layers.base.requirements: `requirements.txt` is not in the build context"), "{err}");
    assert!(
        err.contains("services.app.copy: `src` is not in the build context"),
        "{err}"
    );
    assert!(
        err.contains("`secret.env` is not in the build context (it is excluded by .dockerignore"),
        "{err}"
    );
    assert!(
        failed
            .progress
            .vertex("apt-get install")
            .is_none_or(|v| v.started.is_none()),
        "no install may run:\n{}",
        failed.progress.summary()
    );
}
