//! Named build contexts through a real buildx (`--build-context NAME=VALUE`, frontend opts
//! `context:NAME`): a `docker-image://` context replaces the `from` base of that name, as the
//! Dockerfile frontend lets one override `FROM`; kinds layerstack cannot use yet (directories: named_contexts.rs) and malformed
//! values fail with an error naming the option.

use integration_tests::{Context, Engine, engine_with_frontend, frontend_image};

fn stack() -> String {
    format!(
        "# syntax={}\n[services.app]\nfrom = \"python:3.12-slim\"\nrun = [\"echo built\"]\n",
        frontend_image()
    )
}

/// Whether the image has a python3 (the python base has, the debian base has not).
fn has_python(engine: &Engine, tag: &str) -> String {
    engine
        .docker_run(
            tag,
            &[
                "sh",
                "-c",
                "command -v python3 >/dev/null && echo yes || echo no",
            ],
        )
        .trim()
        .to_string()
}

#[test]
fn an_image_context_replaces_the_base_it_names() {
    let Some(engine) = engine_with_frontend("an_image_context_replaces_the_base_it_names") else {
        return;
    };
    let ctx = Context::new().file("stack.toml", &stack());

    let (tag, _) = engine.build_target("contexts", ctx.path(), "app", &[]);
    let plain = has_python(engine, &tag);
    engine.remove_image(&tag);
    assert_eq!(plain, "yes", "the stack's own base has python3");

    let (tag, build) = engine.build_target(
        "contexts",
        ctx.path(),
        "app",
        &[
            "--build-context",
            "python:3.12-slim=docker-image://debian:bookworm-slim",
        ],
    );
    let over = has_python(engine, &tag);
    engine.remove_image(&tag);
    assert_eq!(over, "no", "debian:bookworm-slim replaced python:3.12-slim");
    // The replacement is resolved (and pinned) like any base.
    let log = build.output.stderr.clone();
    assert!(
        log.contains("load metadata for docker.io/library/debian:bookworm-slim"),
        "{log}"
    );

    // A context no `from` names changes nothing (the Dockerfile frontend ignores it too).
    let (tag, _) = engine.build_target(
        "contexts",
        ctx.path(),
        "app",
        &[
            "--build-context",
            "unused=docker-image://debian:bookworm-slim",
        ],
    );
    let unused = has_python(engine, &tag);
    engine.remove_image(&tag);
    assert_eq!(unused, "yes");
}

#[test]
fn unsupported_and_malformed_contexts_are_errors_naming_the_option() {
    let Some(engine) =
        engine_with_frontend("unsupported_and_malformed_contexts_are_errors_naming_the_option")
    else {
        return;
    };
    let ctx = Context::new().file("stack.toml", &stack());
    let file = ctx.join("stack.toml");
    for (value, want) in [
        (
            "svc-api=https://127.0.0.1:9/api.tar",
            "(frontend option `context:svc-api`, an HTTP source)",
        ),
        (
            "python:3.12-slim=docker-image://Not A Ref",
            "not a valid image reference",
        ),
    ] {
        let failed = engine
            .try_buildx_build(&[
                "--progress=plain",
                "--build-context",
                value,
                "-f",
                &file,
                ctx.path_str(),
            ])
            .expect_err(value);
        let err = &failed.output.stderr;
        assert!(err.contains(want), "{value}: {err}");
    }
}
