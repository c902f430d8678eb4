//! Secrets reach install steps (as a file and as an env var) and nowhere else: every layer
//! tarball and the image config are scanned for the values. SOURCE_DATE_EPOCH sets `created`.

use integration_tests::{Context, Engine, exec, frontend_image};
use sha2::{Digest, Sha256};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

fn sha(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn secrets_reach_install_steps_and_never_a_layer() {
    let Some(engine) = engine("secrets_reach_install_steps_and_never_a_layer") else {
        return;
    };
    // Secrets are not part of cache keys: a nonce in the step makes it run with this run's values.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let token = format!("tok-{nonce}-s3cr3t-file");
    let url = format!("https://user:pw-{nonce}-s3cr3t-env@pypi.example.invalid/simple");
    let stack = format!(
        "# syntax={}\n[secrets.token]\n[secrets.index]\nenv = \"SECRET_INDEX_URL\"\n\
         [layers.base]\nfrom = \"debian:bookworm-slim\"\n\
         run = [\"echo {nonce} >/dev/null; sha256sum /run/secrets/token | cut -c1-64 > /token.sha && printf %s \\\"$SECRET_INDEX_URL\\\" | sha256sum | cut -c1-64 > /env.sha\"]\n\
         [services.app]\nfrom = \"base\"\ncmd = [\"sh\", \"-c\", \"cat /token.sha /env.sha; env | grep -c SECRET_INDEX_URL || true\"]\n",
        frontend_image()
    );
    let ctx = Context::new().file("stack.toml", &stack);
    let tag = engine.unique_tag("secrets");
    let mut cmd = engine.docker([
        "buildx",
        "build",
        "--progress=plain",
        "--secret",
        "id=token,env=LS_TEST_TOKEN",
        "--secret",
        "id=index,env=LS_TEST_INDEX",
        "-f",
        &ctx.join("stack.toml"),
        "-t",
        &tag,
        ctx.path_str(),
    ]);
    cmd.env("LS_TEST_TOKEN", &token).env("LS_TEST_INDEX", &url);
    let out = exec(&mut cmd, None).unwrap();
    if engine.is_old() {
        // BuildKit v0.8 has no `exec.secretenv` cap (ExecOp.secretenv is ignored there): the
        // build must fail naming it, never run the step without the value.
        engine.remove_image(&tag);
        assert!(
            !out.status.success(),
            "an env secret needs the exec.secretenv cap; the build must fail:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("exec.secretenv"),
            "the error names the missing capability:\n{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains(&token) && !out.stderr.contains(&url),
            "the build log shows a secret"
        );
        return;
    }
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        !out.stderr.contains(&token) && !out.stderr.contains(&url),
        "the build log shows a secret"
    );

    // The step saw both values…
    let seen = engine.docker_run(&tag, &[]);
    assert!(
        seen.contains(&sha(&token)),
        "file secret not seen by the step:\n{seen}"
    );
    assert!(
        seen.contains(&sha(&url)),
        "env secret not seen by the step:\n{seen}"
    );
    assert!(
        seen.trim_end().ends_with('0'),
        "the secret env var must not be in the image env:\n{seen}"
    );

    // …and no layer, nor the config, holds either.
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("image.tar");
    let mut save = engine.docker(["image", "save", "-o", tar.to_str().unwrap(), &tag]);
    let saved = exec(&mut save, None).unwrap();
    assert!(saved.status.success(), "{}", saved.stderr);
    let script = format!(
        "set -e; cd {d}; mkdir x; tar -xf image.tar -C x; n=0; for f in $(find x -type f); do n=$((n+1)); if zcat -f \"$f\" 2>/dev/null | grep -a -q -e '{t}' -e 's3cr3t-env'; then echo \"LEAK in $f\"; fi; done; echo scanned $n files",
        d = dir.path().display(),
        t = token
    );
    let scan = exec(std::process::Command::new("sh").args(["-c", &script]), None).unwrap();
    assert!(scan.status.success(), "{}", scan.stderr);
    assert!(!scan.stdout.contains("LEAK"), "{}", scan.stdout);
    let last = scan.stdout.lines().last().unwrap_or_default();
    let files: usize = last
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", scan.stdout));
    assert!(files >= 4, "scanned too few blobs: {}", scan.stdout);
    engine.remove_image(&tag);
}

#[test]
fn a_missing_required_secret_fails_the_step() {
    let Some(engine) = engine("a_missing_required_secret_fails_the_step") else {
        return;
    };
    let stack = format!(
        "# syntax={}\n[secrets.token]\n[services.app]\nfrom = \"debian:bookworm-slim\"\nrun = [\"cat /run/secrets/token\"]\n",
        frontend_image()
    );
    let ctx = Context::new().file("stack.toml", &stack);
    let failed = engine
        .try_buildx_build(&[
            "--progress=plain",
            "-f",
            &ctx.join("stack.toml"),
            ctx.path_str(),
        ])
        .expect_err("no secret given");
    assert!(
        failed.output.stderr.contains("secret token"),
        "{}",
        failed.output.stderr
    );
}

#[test]
fn source_date_epoch_sets_created_and_reaches_the_steps() {
    let Some(engine) = engine("source_date_epoch_sets_created_and_reaches_the_steps") else {
        return;
    };
    let stack = format!(
        "# syntax={}\n[services.app]\nfrom = \"debian:bookworm-slim\"\nrun = [\"echo $SOURCE_DATE_EPOCH > /epoch\"]\ncmd = [\"cat\", \"/epoch\"]\n",
        frontend_image()
    );
    let ctx = Context::new().file("stack.toml", &stack);
    let tag = engine.unique_tag("sde");
    engine.buildx_build(&[
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
        "-f",
        &ctx.join("stack.toml"),
        "-t",
        &tag,
        ctx.path_str(),
    ]);
    assert_eq!(engine.docker_run(&tag, &[]).trim(), "1700000000");
    let inspect = engine.image_inspect(&tag);
    assert_eq!(inspect["Created"], "2023-11-14T22:13:20Z");
    engine.remove_image(&tag);
}

#[test]
fn no_cache_reruns_every_step_and_the_filter_only_the_named_image() {
    let Some(engine) = engine("no_cache_reruns_every_step_and_the_filter_only_the_named_image")
    else {
        return;
    };
    let stack = format!(
        "# syntax={}\n[layers.base]\nfrom = \"debian:bookworm-slim\"\nrun = [\"echo base-{n}\"]\n[services.app]\nfrom = \"base\"\nrun = [\"echo app-{n}\"]\n",
        frontend_image(),
        n = std::process::id()
    );
    let ctx = Context::new().file("stack.toml", &stack);
    let file = ctx.join("stack.toml");
    engine.buildx_build(&["-f", &file, ctx.path_str()]);
    let cached = engine.buildx_build(&["-f", &file, ctx.path_str()]);
    cached
        .progress
        .assert_cached("the base step", |v| v.name.contains("[layer base 1/1] run"));
    let all = engine.buildx_build(&["--no-cache", "-f", &file, ctx.path_str()]);
    for step in ["[layer base 1/1] run", "[service app 1/1] run"] {
        let v = all.vertex(step).unwrap_or_else(|| panic!("{step}"));
        assert!(!v.cached, "--no-cache must re-run {step}: {v:?}");
    }
    let only_app = engine.buildx_build(&["--no-cache-filter", "app", "-f", &file, ctx.path_str()]);
    assert!(
        only_app.vertex("[layer base 1/1] run").unwrap().cached,
        "the filter names only the service"
    );
    assert!(!only_app.vertex("[service app 1/1] run").unwrap().cached);
}
