//! Conda environments with a package cache mount, as the clm seed's notebook service builds
//! them (`RUN --mount=type=cache,target=/opt/conda/pkgs,sharing=locked micromamba install -y
//! -n base -f packages.yaml`), against a local conda channel ([`CondaChannel`]) and the
//! micromamba stand-in image (`scripts/conda-base-image.sh`; py-rattler, not the real
//! micromamba, which cannot be fetched here — see scripts/micromamba-standin/README.md).
//!
//! First with a plain Dockerfile (the pattern itself, independent of layerstack), then through
//! layerstack's `conda` key. Each test proves: the package lands in the image (files, prefix
//! placeholder replaced, on PATH), the cache mount stays out of the image, and a second build
//! that re-runs the install with one more package takes the first from the package cache
//! (the channel served it once; the installer says `cached:`).

use integration_tests::conda::{
    CondaChannel, CondaPackage, MICROMAMBA_IMAGE, ensure_micromamba_image,
};
use integration_tests::pyindex::{PackageIndex, Wheel};
use integration_tests::{Build, Context, Engine, engine_or_skip, ensure_frontend, frontend_image};

fn engine(test: &str) -> Option<&'static Engine> {
    let e = engine_or_skip(test)?;
    ensure_micromamba_image(e);
    Some(e)
}

/// `lsdemo-conda 1.0` (a data file and a script with the prefix placeholder) and
/// `lsdemo-extra 2.0`, with build strings new to every cache.
fn packages() -> (CondaPackage, CondaPackage) {
    let a = CondaPackage::noarch("lsdemo-conda", "1.0")
        .unique_build()
        .file("share/lsdemo/hello.txt", "hello from lsdemo-conda 1.0\n")
        .script(
            "bin/lsdemo-hello",
            "#!/bin/sh\necho \"lsdemo-conda 1.0 in /opt/anaconda1anaconda2anaconda3\"\n",
        );
    let b = CondaPackage::noarch("lsdemo-extra", "2.0")
        .unique_build()
        .depends("lsdemo-conda >=1.0")
        .file("share/lsdemo/extra.txt", "extra 2.0\n");
    (a, b)
}

/// An environment file like the seed's `packages.yaml`.
fn env_file(channel: &CondaChannel, deps: &[&str]) -> String {
    let mut s = format!(
        "name: base\nchannels:\n  - {}\ndependencies:\n",
        channel.url()
    );
    for d in deps {
        s.push_str(&format!("  - {d}\n"));
    }
    s
}

/// Everything the build's steps printed; the installer's per-package lines are echoed.
fn logs(build: &Build) -> String {
    let all: String = build
        .progress
        .vertices
        .iter()
        .map(|v| v.logs.as_str())
        .collect();
    for line in all.lines() {
        if line.starts_with("cached: ") || line.starts_with("downloaded: ") {
            eprintln!("  micromamba: {line}");
        }
    }
    all
}

/// What the image has: the data files, the script's output (found on PATH), the cache dir.
fn look_inside(engine: &Engine, tag: &str) -> String {
    engine.docker_run(
        tag,
        &[
            "sh",
            "-c",
            "cat /opt/conda/share/lsdemo/*.txt; lsdemo-hello; \
             stat -c '%F %a %n' /opt/conda/bin/lsdemo-hello; \
             echo \"pkgs entries: $(ls -A /opt/conda/pkgs | wc -l)\"",
        ],
    )
}

/// The assertions both tests make about two builds.
fn assert_first_build(build: &Build, channel: &CondaChannel, a: &CondaPackage, inside: &str) {
    let logs = logs(build);
    assert!(
        logs.contains(&format!("downloaded: {}", a.dist())),
        "the first build downloads {}:\n{logs}",
        a.dist()
    );
    assert_eq!(channel.downloads(&a.filename()), 1, "{logs}");
    assert!(
        inside.contains("hello from lsdemo-conda 1.0\n"),
        "the package's file is in the image:\n{inside}"
    );
    assert!(
        inside.contains("lsdemo-conda 1.0 in /opt/conda\n"),
        "the script is on PATH with its prefix placeholder replaced:\n{inside}"
    );
    assert!(
        inside.contains("regular file 755 /opt/conda/bin/lsdemo-hello"),
        "linked as a copy, not a link into the cache mount:\n{inside}"
    );
    assert!(
        inside.contains("pkgs entries: 0"),
        "the package cache (a cache mount) stays out of the image:\n{inside}"
    );
}

fn assert_second_build(
    build: &Build,
    channel: &CondaChannel,
    a: &CondaPackage,
    b: &CondaPackage,
    inside: &str,
) {
    let logs = logs(build);
    assert!(
        logs.contains(&format!("cached: {}", a.dist())),
        "the second build takes {} from the package cache:\n{logs}",
        a.dist()
    );
    assert!(
        logs.contains(&format!("downloaded: {}", b.dist())),
        "and downloads the added {}:\n{logs}",
        b.dist()
    );
    assert_eq!(
        channel.downloads(&a.filename()),
        1,
        "{} was downloaded again:\n{logs}",
        a.filename()
    );
    assert_eq!(channel.downloads(&b.filename()), 1, "{logs}");
    assert!(
        inside.contains("hello from lsdemo-conda 1.0\n") && inside.contains("extra 2.0\n"),
        "both packages are in the image:\n{inside}"
    );
}

/// The stand-in (py-rattler) aborts when two installs run at once on this engine, so the two
/// tests take turns; real micromamba has no such limit (the cache mount is `sharing=locked`).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn conda_cache_mount_with_a_plain_dockerfile() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(engine) = engine("conda_cache_mount_with_a_plain_dockerfile") else {
        return;
    };
    let (a, b) = packages();
    let channel = CondaChannel::serve(&[a.clone(), b.clone()]);
    // The seed's step, verbatim but for the file's path.
    let dockerfile = format!(
        "FROM {MICROMAMBA_IMAGE}\n\
         COPY packages.yaml /tmp/packages.yaml\n\
         RUN --mount=type=cache,target=/opt/conda/pkgs,sharing=locked \\\n    \
         micromamba install -y -n base -f /tmp/packages.yaml\n"
    );
    let ctx = Context::new()
        .file("Dockerfile", &dockerfile)
        .file("packages.yaml", &env_file(&channel, &["lsdemo-conda=1.0"]));
    let first = engine.unique_tag("conda-dockerfile");
    let b1 = engine.buildx_build(&["--network=host", "-t", &first, ctx.path_str()]);
    assert_first_build(&b1, &channel, &a, &look_inside(engine, &first));

    // One more package: the environment file changes, so the install step runs again.
    let ctx = ctx.file(
        "packages.yaml",
        &env_file(&channel, &["lsdemo-conda=1.0", "lsdemo-extra"]),
    );
    let second = engine.unique_tag("conda-dockerfile");
    let b2 = engine.buildx_build(&["--network=host", "-t", &second, ctx.path_str()]);
    assert_second_build(&b2, &channel, &a, &b, &look_inside(engine, &second));
    engine.remove_image(&first);
    engine.remove_image(&second);
}

#[test]
fn conda_layer_through_layerstack() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(engine) = engine("conda_layer_through_layerstack") else {
        return;
    };
    ensure_frontend(engine);
    let (a, b) = packages();
    let channel = CondaChannel::serve(&[a.clone(), b.clone()]);
    let pypi = PackageIndex::serve(&[Wheel::pure("six", "1.16.0")]);
    let stack = format!(
        r#"# syntax={frontend}
[layers.notebook]
from = "{MICROMAMBA_IMAGE}"
conda = {{ file = "packages.yaml" }}
pip = ["six==1.16.0"]
index-url = "{index}"
install-env = {{ PIP_TRUSTED_HOST = "127.0.0.1" }}
"#,
        frontend = frontend_image(),
        index = pypi.url(),
    );
    let ctx = Context::new()
        .file("stack.toml", &stack)
        .file("packages.yaml", &env_file(&channel, &["lsdemo-conda=1.0"]));
    let build = |ctx: &Context, tag: &str| {
        engine.try_buildx_build(&[
            "--network=host",
            "-f",
            &ctx.join("stack.toml"),
            "--target",
            "notebook",
            "-t",
            tag,
            ctx.path_str(),
        ])
    };

    let first = engine.unique_tag("conda-layerstack");
    let b1 = match build(&ctx, &first) {
        Ok(b) => b,
        Err(failed) if failed.output.stderr.contains("unknown key `conda`") => {
            eprintln!(
                "\n*** SKIPPED: conda_layer_through_layerstack: the frontend {} does not know \
                 the `conda` key yet (\"unknown key `conda`\"); this test runs once layerstack \
                 supports `conda = {{ file = … }}` ***\n",
                frontend_image()
            );
            return;
        }
        Err(failed) => panic!("{}", failed.failure_report()),
    };
    let inside = look_inside(engine, &first);
    assert_first_build(&b1, &channel, &a, &inside);
    let six = engine.docker_run(
        &first,
        &["python3", "-c", "import six; print(six.__version__)"],
    );
    assert_eq!(six.trim(), "1.16.0", "pip ran after the conda step");
    let config = engine.image_inspect(&first);
    let env = config["Config"]["Env"].to_string();
    assert!(
        env.contains("MAMBA_ROOT_PREFIX=/opt/conda") && env.contains("PATH=/opt/conda/bin:"),
        "the base image's env is inherited: {env}"
    );

    let ctx = ctx.file(
        "packages.yaml",
        &env_file(&channel, &["lsdemo-conda=1.0", "lsdemo-extra"]),
    );
    let second = engine.unique_tag("conda-layerstack");
    let b2 = build(&ctx, &second).unwrap_or_else(|f| panic!("{}", f.failure_report()));
    assert_second_build(&b2, &channel, &a, &b, &look_inside(engine, &second));
    engine.remove_image(&first);
    engine.remove_image(&second);
}
