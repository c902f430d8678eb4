//! Release and version policy through a real buildx: the frontend image (whichever
//! `LAYERSTACK_FRONTEND_IMAGE` names: `layerstack:dev`, or a `release` build) answers
//! `--version`, says its version in `subrequests.describe`, and stops a stack that requires a
//! newer frontend with that one error at the `requires` line.

use integration_tests::{Context, Engine, exec, frontend_image};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

/// The workspace version: what llb-gen and the frontend report.
const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn frontend_image_reports_its_version() {
    let Some(engine) = engine("frontend_image_reports_its_version") else {
        return;
    };
    let out = engine.docker_run(&frontend_image(), &["--version"]);
    assert_eq!(out.trim(), format!("layerstack-frontend {VERSION}"));
}

#[test]
fn describe_names_the_frontend_version() {
    let Some(engine) = engine("describe_names_the_frontend_version") else {
        return;
    };
    let ctx = Context::new().file(
        "stack.toml",
        &format!(
            "# syntax={}\n[services.app]\nfrom = \"debian:bookworm-slim\"\n",
            frontend_image()
        ),
    );
    let file = ctx.join("stack.toml");
    let mut cmd = engine.docker([
        "buildx",
        "build",
        "--print",
        "subrequests.describe",
        "-f",
        &file,
        ctx.path_str(),
    ]);
    cmd.env("BUILDX_EXPERIMENTAL", "1");
    let out = exec(&mut cmd, None).unwrap();
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "List available subrequest types (layerstack {VERSION})"
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn a_stack_for_a_newer_frontend_fails_at_its_requires_line() {
    let Some(engine) = engine("a_stack_for_a_newer_frontend_fails_at_its_requires_line") else {
        return;
    };
    // Keys a future format might have: not reported, only the requirement is.
    let stack = format!(
        "# syntax={}\n[stack]\nrequires = \">=999.1\"\nfuture-key = true\n\n[services.app]\nfrom = \"debian:bookworm-slim\"\nnew-thing = 1\n",
        frontend_image()
    );
    let ctx = Context::new().file("stack.toml", &stack);
    let file = ctx.join("stack.toml");
    let failed = engine
        .try_buildx_build(&["--progress=plain", "-f", &file, ctx.path_str()])
        .expect_err("the frontend is older than 999.1");
    let err = &failed.output.stderr;
    assert!(
        err.contains(&format!(
            "this stack requires layerstack >=999.1, but this is layerstack {VERSION}"
        )),
        "{err}"
    );
    // BuildKit's excerpt shows the lines around the error (`   4 |     future-key = true`):
    // only the messages themselves must not name the unknown keys.
    let messages: Vec<&str> = err
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with(">>>")
                || t.split_once(" |")
                    .is_some_and(|(n, _)| n.trim().parse::<u32>().is_ok()))
        })
        .collect();
    assert!(
        !messages
            .iter()
            .any(|l| l.contains("future-key") || l.contains("new-thing")),
        "{err}"
    );
    // Nothing else about the stack either (its model is left empty, not half-understood).
    assert!(!err.contains("defines no layers"), "{err}");
    if !engine.is_old() {
        assert!(err.contains("stack.toml:3"), "{err}");
    }
    // A requirement this frontend meets builds as usual.
    let ok = stack
        .replace(">=999.1", &format!(">={VERSION}"))
        .replace("future-key = true\n", "")
        .replace("new-thing = 1\n", "");
    let ctx = Context::new().file("stack.toml", &ok);
    let file = ctx.join("stack.toml");
    engine.buildx_build(&["-f", &file, ctx.path_str()]);
}
