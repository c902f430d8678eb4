//! Smoke test of the harness itself: a plain Dockerfile, built and run on the engine.

use integration_tests::{Context, engine_or_skip};

#[test]
fn plain_dockerfile_builds_runs_and_caches() {
    let Some(engine) = engine_or_skip("plain_dockerfile_builds_runs_and_caches") else {
        return;
    };
    let ctx = Context::new().file(
        "Dockerfile",
        "FROM debian:bookworm-slim\n\
         RUN echo hello from the harness > /greeting\n\
         CMD [\"cat\", \"/greeting\"]\n",
    );
    let tag = engine.unique_tag("engine-smoke");

    let first = engine.buildx_build(&["-t", &tag, ctx.path_str()]);
    assert!(
        first.progress.errors().is_empty(),
        "{}",
        first.progress.summary()
    );
    let run = first
        .vertex("RUN echo hello")
        .expect("the RUN step is reported");
    assert!(run.started.is_some() && run.completed.is_some(), "{run:?}");

    // The image landed in the engine's store and runs.
    assert_eq!(
        engine.docker_run(&tag, &[]).trim(),
        "hello from the harness"
    );
    let inspect = engine.image_inspect(&tag);
    assert_eq!(
        inspect["Config"]["Cmd"],
        serde_json::json!(["cat", "/greeting"])
    );

    // The same build again is answered from the cache.
    let again = engine.buildx_build(&["-t", &tag, ctx.path_str()]);
    again
        .progress
        .assert_cached("RUN", |v| v.name.contains("] RUN "));

    // A failing step is reported with its error and its output.
    let bad = Context::new().file(
        "Dockerfile",
        "FROM debian:bookworm-slim\nRUN echo about to fail && exit 7\n",
    );
    let failed = engine
        .try_buildx_build(&[bad.path_str()])
        .expect_err("a RUN that exits 7 fails the build");
    let step = failed
        .vertex("RUN echo about to fail")
        .expect("the failing step is reported");
    assert!(
        step.error.as_deref().unwrap_or("").contains("exit code: 7"),
        "{step:?}"
    );
    assert!(step.logs.contains("about to fail"), "{step:?}");
    assert!(
        failed
            .error_line()
            .is_some_and(|l| l.contains("exit code: 7"))
    );

    engine.remove_image(&tag);
}
