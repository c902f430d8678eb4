//! Step placement (`at = …` on `run` and `copy` entries) and optional copies, built for real:
//! a command before apt configures dpkg for the apt step, a command after the Python deps
//! imports an installed package, a command after the copies edits a copied file, optional
//! copies with and without a match, and a required copy pattern that matches nothing fails
//! before anything runs, naming the pattern and its stack.toml line.

use integration_tests::pyindex::{PackageIndex, Wheel};
use integration_tests::{Context, Engine, frontend_image};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

fn stack(index: &str) -> String {
    format!(
        r#"# syntax={}
[stack]
install-env = {{ PIP_TRUSTED_HOST = "127.0.0.1" }}

[layers.base]
from = "python:3.12-slim"
apt = ["jq"]
index-url = "{index}"
pip = ["lsdemo-a==1.0"]
workdir = "/app"
run = [
  {{ cmd = "python3 -c 'import lsdemo_a; print(lsdemo_a.__version__)' > /opt/imported.txt", at = "after-python" }},
  {{ cmd = "echo 'path-exclude /usr/share/doc/jq/*' > /etc/dpkg/dpkg.cfg.d/zz-placement", at = "before-apt" }},
  {{ cmd = "sed -i s/@VERSION@/1.2.3/ /app/entrypoint.sh && chmod +x /app/entrypoint.sh", at = "after-copy" }},
]
copy = [
  "entrypoint.sh",
  {{ src = "extra*.txt", optional = true }},
  {{ src = "missing*.txt", optional = true }},
  {{ src = "VERSION", optional = true }},
  {{ src = "entrypoint.local.sh", optional = true }},
  {{ src = "conf/local.toml", optional = true }},
]
cmd = ["/app/entrypoint.sh"]
"#,
        frontend_image()
    )
}

#[test]
fn placed_steps_run_where_at_says_and_optional_copies_may_match_nothing() {
    let Some(engine) =
        engine("placed_steps_run_where_at_says_and_optional_copies_may_match_nothing")
    else {
        return;
    };
    let index = PackageIndex::serve(&[Wheel::pure("lsdemo-a", "1.0")]);
    let ctx = Context::new()
        .file("stack.toml", &stack(&index.url()))
        .file("entrypoint.sh", "#!/bin/sh\necho version @VERSION@\n")
        .file("extra-a.txt", "a\n")
        .file("extra-b.txt", "b\n")
        .file("VERSION", "1.2.3\n");
    let tag = engine.unique_tag("placement");
    let build_args = [
        "--network=host",
        "-f",
        &ctx.join("stack.toml"),
        "--target",
        "base",
        "-t",
        &tag,
        ctx.path_str(),
    ];
    let build = engine.buildx_build(&build_args);
    // The steps in their placed order, numbered over the whole image.
    for name in [
        "[layer base 1/12] run echo 'path-exclude /usr/share/doc/jq/*'",
        "[layer base 2/12] apt-get install jq",
        "[layer base 3/12] workdir /app",
        "[layer base 4/12] pip install lsdemo-a==1.0",
        "[layer base 5/12] run python3 -c 'import lsdemo_a",
        "[layer base 6/12] copy entrypoint.sh",
        "[layer base 7/12] copy extra*.txt",
        "[layer base 8/12] copy missing*.txt",
        "[layer base 9/12] copy VERSION",
        "[layer base 10/12] copy entrypoint.local.sh",
        "[layer base 11/12] copy conf/local.toml",
        "[layer base 12/12] run sed -i s/@VERSION@/1.2.3/",
    ] {
        assert!(
            build.vertex(name).is_some(),
            "no vertex {name:?}:\n{}",
            build.progress.summary()
        );
    }

    // after-copy edited the copied entrypoint and made it executable.
    let out = engine.docker_run(&tag, &[]);
    assert_eq!(out.trim(), "version 1.2.3", "{out}");
    let checks = engine.docker_run(
        &tag,
        &[
            "sh",
            "-c",
            "cat /opt/imported.txt; \
             command -v jq; \
             test -e /usr/share/doc/jq/copyright && echo jq-doc || echo no-jq-doc; \
             test -e /usr/share/doc/libjq1/copyright && echo libjq1-doc; \
             ls /app | sort | tr '\\n' ' '",
        ],
    );
    // after-python imported the package pip had installed.
    assert!(checks.starts_with("1.0\n"), "{checks}");
    // before-apt configured dpkg, and the apt step honoured it: jq is installed without
    // its copyright file, while its library keeps one (the slim default).
    assert!(checks.contains("/usr/bin/jq\n"), "{checks}");
    assert!(checks.contains("no-jq-doc\n"), "{checks}");
    assert!(checks.contains("libjq1-doc\n"), "{checks}");
    // Optional copies with a match copied it; those without copied nothing.
    assert!(
        checks.contains("VERSION entrypoint.sh extra-a.txt extra-b.txt "),
        "{checks}"
    );

    // A change to a copied file re-runs the copies and the after-copy command, never an
    // install or a command placed before the copies.
    std::fs::write(
        ctx.path().join("entrypoint.sh"),
        "#!/bin/sh\necho release @VERSION@\n",
    )
    .expect("edit entrypoint.sh");
    let again = engine.buildx_build(&build_args);
    for (name, cached) in [
        ("[layer base 2/12] apt-get install jq", true),
        ("[layer base 4/12] pip install lsdemo-a==1.0", true),
        ("[layer base 5/12] run python3 -c", true),
        ("[layer base 12/12] run sed -i", false),
    ] {
        let v = again
            .vertex(name)
            .unwrap_or_else(|| panic!("no vertex {name:?}:\n{}", again.progress.summary()));
        assert_eq!(v.cached, cached, "{name}:\n{}", again.progress.summary());
    }
    let out = engine.docker_run(&tag, &[]);
    assert_eq!(out.trim(), "release 1.2.3", "{out}");
    engine.remove_image(&tag);
}

#[test]
fn a_required_copy_that_matches_nothing_names_the_pattern_and_its_line() {
    let Some(engine) =
        engine("a_required_copy_that_matches_nothing_names_the_pattern_and_its_line")
    else {
        return;
    };
    let stack = format!(
        "# syntax={}\n[layers.base]\nfrom = \"debian:bookworm-slim\"\nrun = [\"echo must not run\"]\ncopy = [\n  \"app\",\n  \"scripts/*.sh\",\n  {{ src = \"extra*.txt\", optional = true }},\n]\n",
        frontend_image()
    );
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file("app/main.py", "print('hi')\n")
        .file("scripts/README", "no shell scripts here\n");
    let failed = engine
        .try_buildx_build(&[
            "--progress=rawjson",
            "--network=host",
            "-f",
            &ctx.join("stack.toml"),
            ctx.path_str(),
        ])
        .expect_err("scripts/*.sh matches nothing");
    let err = failed.output.stderr.clone();
    assert!(
        err.contains(
            "stack.toml:7:3: error: layers.base.copy: `scripts/*.sh` matches nothing in the build context"
        ),
        "{err}"
    );
    assert!(err.contains("optional = true"), "{err}");
    // The optional pattern is no error, and the check failed the build before any step ran.
    assert!(!err.contains("`extra*.txt`"), "{err}");
    assert!(
        failed
            .progress
            .vertex("run echo must not run")
            .is_none_or(|v| v.started.is_none()),
        "{}",
        failed.progress.summary()
    );
}
