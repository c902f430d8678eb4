//! Named contexts that are images, through a real buildx: `--build-context
//! tools=docker-image://REF` read by `copy = { context = "tools", src = "/abs" }` and by a
//! `run` context `tools:/abs` (one image source for both), a relative path in it refused at
//! its line, and bake's `contexts = { base = "target:base" }` (buildx sends the other
//! target's result as the frontend input and `context:base=input:…`) used as `from` and as a
//! copy context, spliced as one vertex with the other target's build.

use integration_tests::{Context, Progress, engine_with_frontend, frontend_image};

/// A local base image (scripts/base-images.sh) with files the service's base lacks.
const TOOLS: &str = "python:3.11-slim";

fn stack() -> String {
    format!(
        "# syntax={}\n\
         [services.app]\nfrom = \"debian:bookworm-slim\"\n\
         run = [{{ cmd = \"sha256sum @tools/usr/lib/python3.11/os.py | cut -d' ' -f1 > /os.sum\", context = [\"tools:/usr/lib/python3.11/os.py\"] }}]\n\
         copy = [{{ context = \"tools\", src = \"/usr/bin/python3.11\", dest = \"/usr/local/bin/\" }}]\n",
        frontend_image()
    )
}

#[test]
fn an_image_context_feeds_copies_and_run_contexts_from_one_source() {
    let Some(engine) =
        engine_with_frontend("an_image_context_feeds_copies_and_run_contexts_from_one_source")
    else {
        return;
    };
    let ctx = Context::new().file("stack.toml", &stack());
    let named = format!("tools=docker-image://{TOOLS}");
    let (tag, build) =
        engine.build_target("imgctx", ctx.path(), "app", &["--build-context", &named]);
    let _guard = engine.tagged([tag.clone()]);
    // One image source for the copy and the run context.
    let sources = build
        .progress
        .matching("context tools: docker.io/library/python:3.11-slim");
    assert_eq!(
        sources.len(),
        1,
        "one image source vertex:\n{}",
        build.progress.summary()
    );
    let want = engine
        .docker_run(
            TOOLS,
            &[
                "sh",
                "-c",
                "sha256sum /usr/lib/python3.11/os.py | cut -d' ' -f1; wc -c < /usr/bin/python3.11",
            ],
        )
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let out = engine.docker_run(
        &tag,
        &[
            "sh",
            "-c",
            "cat /os.sum; wc -c < /usr/local/bin/python3.11; ls -a / /run 2>&1 | tr '\\n' ' '",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], want[0],
        "the run read os.py out of the image: {out}"
    );
    assert_eq!(
        lines[1], want[1],
        "the copy took /usr/bin/python3.11 out of the image: {out}"
    );
    assert!(
        !out.contains("@tools"),
        "staged files never reach the image: {out}"
    );
}

#[test]
fn a_relative_path_in_an_image_context_is_a_located_error() {
    let Some(engine) =
        engine_with_frontend("a_relative_path_in_an_image_context_is_a_located_error")
    else {
        return;
    };
    let stack = format!(
        "# syntax={}\n[services.app]\nfrom = \"debian:bookworm-slim\"\n\
         copy = [{{ context = \"tools\", src = \"usr/bin/python3.11\" }}]\n",
        frontend_image()
    );
    let ctx = Context::new().file("stack.toml", &stack);
    let file = ctx.join("stack.toml");
    let named = format!("tools=docker-image://{TOOLS}");
    let failed = engine
        .try_buildx_build(&[
            "--progress=plain",
            "--build-context",
            &named,
            "-f",
            &file,
            ctx.path_str(),
        ])
        .expect_err("a relative src in an image");
    let err = &failed.output.stderr;
    assert!(
        err.contains("`usr/bin/python3.11` is relative, but the named context `tools` is an image"),
        "{err}"
    );
    assert!(err.contains("services.app.copy[0].src"), "{err}");
    assert!(err.contains("stack.toml:4"), "{err}");
}

/// bake `contexts = { base = "target:base" }`: the Dockerfile target `base` is the stack's
/// `from = "base"` (with its image config: env) and a copy context; its ops are spliced as
/// they are, so its RUN is one vertex in both builds.
#[test]
fn bake_target_contexts_are_from_and_copy_sources() {
    let Some(engine) = engine_with_frontend("bake_target_contexts_are_from_and_copy_sources")
    else {
        return;
    };
    let nonce = integration_tests::nonce();
    let tag = format!("layerstack-test/imgctx-bake:{nonce}");
    let _guard = engine.tagged([tag.clone()]);
    let stack = format!(
        "# syntax={}\n[services.app]\nfrom = \"base\"\n\
         copy = [{{ context = \"base\", src = \"/marker.txt\", dest = \"/srv/\" }}]\n\
         cmd = [\"sh\", \"-c\", \"cat /marker.txt /srv/marker.txt; echo env=$FROM_BASE\"]\n",
        frontend_image()
    );
    let dockerfile = format!(
        "FROM debian:bookworm-slim\nENV FROM_BASE=yes\nRUN echo from-base-target-{nonce} > /marker.txt\n"
    );
    let bake = serde_json::json!({
        "target": {
            "base": {
                "context": ".",
                "dockerfile": "base.Dockerfile",
                "output": ["type=cacheonly"],
            },
            "app": {
                "context": ".",
                "dockerfile": "stack.toml",
                "target": "app",
                "contexts": { "base": "target:base" },
                "tags": [tag],
                "output": ["type=docker"],
            },
        }
    });
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file("base.Dockerfile", &dockerfile)
        .file("docker-bake.json", &bake.to_string());
    let out = engine.buildx_bake(&["-f", "docker-bake.json", "app"], ctx.path());
    assert!(out.status.success(), "bake failed:\n{}", out.stderr);
    let progress = Progress::parse(&out.stderr);
    // The base target's RUN, in its own build and spliced into the stack's: one digest.
    let runs = progress.matching(&format!("from-base-target-{nonce}"));
    assert_eq!(runs.len(), 1, "one vertex:\n{}", progress.summary());
    let shown = engine.docker_run(&tag, &[]);
    let lines: Vec<&str> = shown.lines().collect();
    let marker = format!("from-base-target-{nonce}");
    assert_eq!(
        lines,
        vec![marker.as_str(), marker.as_str(), "env=yes"],
        "from = \"base\" built on the target's result (its env too), the copy took its file: {shown}"
    );
}
