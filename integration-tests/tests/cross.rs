//! Cross-installs: pip and uv steps of a linux/arm64 build are resolved on the build platform
//! (linux/amd64) for arm64's wheel tags into a pylock.toml that is installed like a `lock` step
//! (checksummed HTTP sources, groups installed on linux/amd64, merged): no emulation, and the
//! progress names say which happened; a requirement without a wheel keeps its sdist, built into a
//! wheel on the (emulated) target alone. The wheels come from a local index (127.0.0.1) built here: an
//! arm64 and an amd64 build of `lsdemo-native` (with a console script) and a pure
//! `lsdemo-app` that depends on it, plus an sdist-only `lsdemo-src`.
//!
//! Needs linux/arm64 emulation (QEMU binfmt, registered by scripts/engine.sh) to run the
//! images; the old engine (dockerd 20.10) has no arm64 base images, see platforms.rs.

use integration_tests::pyindex::{IndexFile, PackageIndex, Sdist, Wheel};
use integration_tests::{
    Build, Context, Engine, arm64_emulation, engine_with_frontend, frontend_image,
};

fn engine(test: &str) -> Option<&'static Engine> {
    let e = engine_with_frontend(test)?;
    if e.is_old() {
        eprintln!(
            "{test}: not applicable on the old engine (no linux/arm64 base images in its \
             classic store; platforms.rs checks its failure)"
        );
        return None;
    }
    arm64_emulation(e, test).then_some(e)
}

fn native(arch: &str) -> Wheel {
    let mut w = Wheel::tagged(
        "lsdemo-native",
        "1.0",
        &format!("cp311-cp311-manylinux_2_17_{arch}"),
    );
    w.scripts = vec![("lsdemo-native".into(), "lsdemo_native:main".into())];
    w
}

fn index() -> PackageIndex {
    let mut app = Wheel::pure("lsdemo-app", "1.0");
    app.requires = vec![
        "lsdemo-native==1.0".into(),
        "lsdemo-armdep==1.0; platform_machine == \"aarch64\"".into(),
    ];
    let pure = |n: &str| Wheel::pure(n, "1.0");
    let files: Vec<IndexFile> = [
        native("aarch64"),
        native("x86_64"),
        app,
        pure("lsdemo-armdep"),
        pure("lsdemo-armonly"),
        pure("lsdemo-x86only"),
    ]
    .iter()
    .map(Wheel::index_file)
    .chain([Sdist::new("lsdemo-src", "1.0").index_file()])
    .collect();
    PackageIndex::serve_files(&[("simple", files)])
}

/// A layer with `lsdemo-native`, a service adding `lsdemo-app` (which needs the layer's
/// `lsdemo-native` again, and `lsdemo-armdep` on aarch64 only) and two requirements with
/// machine markers, and, when `src`, the sdist-only `lsdemo-src`.
fn stack(src: bool) -> String {
    let extra = if src { ", \"lsdemo-src==1.0\"" } else { "" };
    format!(
        "# syntax={}\n\
         [stack]\nname = \"cross\"\ndefault = \"app\"\ninstaller = \"${{INSTALLER}}\"\n\
         install-env = {{ PIP_TRUSTED_HOST = \"127.0.0.1\", UV_NATIVE_TLS = \"1\", \
         UV_INSECURE_HOST = \"127.0.0.1\", PIP_NO_BUILD_ISOLATION = \"0\", \
         UV_NO_BUILD_ISOLATION = \"1\" }}\n\n\
         [args]\nINDEX = \"https://pypi.org/simple\"\nINSTALLER = \"pip\"\n\n\
         [layers.base]\nfrom = \"python:3.12-slim\"\nindex-url = \"${{INDEX}}\"\n\
         pip = [\"lsdemo-native==1.0\"]\n\n\
         [services.app]\nfrom = \"base\"\nindex-url = \"${{INDEX}}\"\n\
         pip = [\"lsdemo-app==1.0\", \"lsdemo-armonly==1.0; platform_machine == 'aarch64'\",          \"lsdemo-x86only==1.0; platform_machine == 'x86_64'\"{extra}]\ncmd = [\"lsdemo-native\"]\n",
        frontend_image()
    )
}

fn build(engine: &Engine, ctx: &Context, index: &PackageIndex, tag: &str, args: &[&str]) -> Build {
    build_for(engine, ctx, index, tag, "linux/arm64", args)
}

fn build_for(
    engine: &Engine,
    ctx: &Context,
    index: &PackageIndex,
    tag: &str,
    platform: &str,
    args: &[&str],
) -> Build {
    let index_arg = format!("INDEX={}", index.url());
    let mut all = vec![
        "--network=host",
        "--platform",
        platform,
        "--build-arg",
        &index_arg,
        "--load",
        "-t",
        tag,
    ];
    all.extend_from_slice(args);
    let file = ctx.join("stack.toml");
    all.extend_from_slice(&["-f", &file, ctx.path_str()]);
    engine.buildx_build(&all)
}

/// `docker buildx build --call lock` for linux/arm64: what it printed.
fn call_lock(engine: &Engine, ctx: &Context, index: &PackageIndex, installer_arg: &str) -> String {
    call_lock_for(engine, ctx, index, installer_arg, "linux/arm64")
}

fn call_lock_for(
    engine: &Engine,
    ctx: &Context,
    index: &PackageIndex,
    installer_arg: &str,
    platform: &str,
) -> String {
    let index_arg = format!("INDEX={}", index.url());
    let file = ctx.join("stack.toml");
    let mut cmd = engine.subrequest("lock");
    cmd.args([
        "--network=host",
        "--platform",
        platform,
        "--build-arg",
        &index_arg,
        "--build-arg",
        installer_arg,
        "-f",
        &file,
        ctx.path_str(),
    ]);
    // buildx prints `result.txt`, or `result.json` (then the quotes are escaped).
    integration_tests::run(cmd).stdout.replace("\\\"", "\"")
}

/// What the arm64 image says about its packages: lines of a script run under emulation.
fn inspect(engine: &Engine, tag: &str) -> Vec<String> {
    inspect_on(engine, tag, "linux/arm64")
}

/// What the image says about its packages, run for `platform`.
fn inspect_on(engine: &Engine, tag: &str, platform: &str) -> Vec<String> {
    let script = "uname -m; \
        python3 -c 'import lsdemo_native, lsdemo_app; print(lsdemo_native.WHEEL_TAG); print(lsdemo_app.__version__)'; \
        lsdemo-native; \
        pip check >/dev/null && echo pip-check-ok; \
        ls -d $(python3 -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')/lsdemo_native-*.dist-info | wc -l; \
        pip show -f lsdemo-native | grep -c 'bin/lsdemo-native'; \
        python3 -c 'import importlib.util as u; print(*[n for n in (\"lsdemo_armdep\", \"lsdemo_armonly\", \"lsdemo_x86only\") if u.find_spec(n)])'; \
        pip uninstall -y lsdemo-app >/dev/null 2>&1 && echo uninstall-ok";
    engine
        .docker_run_with(
            &[
                "--network=none",
                "--platform",
                platform,
                "--entrypoint",
                "sh",
            ],
            tag,
            &["-c", script],
        )
        .lines()
        .map(str::to_string)
        .collect()
}

/// A vertex whose name starts with `step` (names of long steps are cut) and has `suffix`.
fn vertex_with<'a>(b: &'a Build, step: &str, suffix: &str) -> &'a integration_tests::Vertex {
    b.progress
        .matching(step)
        .into_iter()
        .find(|v| v.name.starts_with(step) && v.name.contains(suffix))
        .unwrap_or_else(|| panic!("no `{step}…{suffix}` vertex:\n{}", b.progress.summary()))
}

/// The step was resolved on the build platform into a lock (pip: from `pip install --dry-run
/// --report`, uv: `uv pip compile --format pylock.toml`), installed like a `lock` step: groups
/// on linux/amd64, merged; never the cross-install script, never emulated.
fn assert_cross(b: &Build, step: &str, installer: &str) {
    vertex_with(b, step, ": resolve for linux/arm64 (on linux/amd64)");
    vertex_with(
        b,
        step,
        " (resolved for linux/arm64, installed on linux/amd64) (merge)",
    );
    // The step's Python installs all ran on the build platform: its vertices are the resolve,
    // the lock groups and the merge, never a plain `pip install` (on arm64).
    let head = step.split("] ").next().unwrap();
    assert!(
        !b.progress
            .matching(&format!("{head}] lock group "))
            .is_empty(),
        "{installer}: {step}: no lock group\n{}",
        b.progress.summary()
    );
    for v in b.progress.matching(step) {
        assert!(
            v.name.contains(": resolve for linux/arm64")
                || v.name
                    .contains("(resolved for linux/arm64, installed on linux/amd64)"),
            "{installer}: {step}: a vertex that is neither the resolve nor the lock install: {}",
            v.name
        );
    }
    assert!(
        b.progress.matching("(cross-install on").is_empty(),
        "{installer}: nothing goes through the cross-install script\n{}",
        b.progress.summary()
    );
    let emulated = b.progress.matching("(emulated");
    assert!(
        emulated.is_empty(),
        "{installer}: nothing may be emulated: {:?}\n{}",
        emulated.iter().map(|v| &v.name).collect::<Vec<_>>(),
        b.progress.summary()
    );
}

#[test]
fn arm64_wheels_are_installed_on_the_build_platform_and_run_on_arm64() {
    let test = "arm64_wheels_are_installed_on_the_build_platform_and_run_on_arm64";
    let Some(engine) = engine(test) else { return };
    let index = index();
    let ctx = Context::new().file("stack.toml", &stack(false));
    for installer in ["pip", "uv"] {
        let tag = engine.unique_tag(&format!("cross-{installer}"));
        let arg = format!("INSTALLER={installer}");
        let b = build(engine, &ctx, &index, &tag, &["--build-arg", &arg]);
        let verb = if installer == "uv" {
            "uv pip install"
        } else {
            "pip install"
        };
        assert_cross(
            &b,
            &format!("[layer base 1/1] {verb} lsdemo-native==1.0"),
            installer,
        );
        assert_cross(
            &b,
            &format!("[service app 1/1] {verb} lsdemo-app==1.0"),
            installer,
        );
        // `--call lock` prints the locks the resolve steps wrote (nothing else is built).
        let lock = call_lock(engine, &ctx, &index, &arg);
        eprintln!("{installer}: --call lock printed:\n{lock}");
        for want in [
            "lock-version = \"1.0\"",
            "name = \"lsdemo-app\"",
            "lsdemo_native-1.0-cp311-cp311-manylinux_2_17_aarch64.whl",
            "lsdemo_armdep-1.0-py3-none-any.whl",
            "hashes = { sha256 = \"",
        ] {
            assert!(
                lock.contains(want),
                "{installer}: `--call lock` lacks {want}:\n{lock}"
            );
        }
        assert!(!lock.contains("x86_64.whl\""), "{installer}: {lock}");
        let lines = inspect(engine, &tag);
        assert_eq!(
            lines,
            [
                "aarch64",
                "cp311-cp311-manylinux_2_17_aarch64",
                "1.0",
                "1.0 cp311-cp311-manylinux_2_17_aarch64",
                "pip-check-ok",
                // The service's install kept the layer's lsdemo-native: one copy.
                "1",
                // Its RECORD points at the console script where a native install puts it.
                "1",
                // Markers are evaluated for the target's machine, not the build platform's.
                "lsdemo_armdep lsdemo_armonly",
                "uninstall-ok",
            ],
            "{installer}: the arm64 image"
        );
        let config = engine.image_inspect(&tag);
        assert_eq!(config["Architecture"], "arm64", "{installer}: {config}");
        engine.remove_image(&tag);
    }
    // The amd64 build of the native package was never fetched: the build platform installed
    // the arm64 wheels only.
    assert_eq!(
        index.downloads(&native("x86_64").filename()),
        0,
        "the amd64 wheel must not be downloaded"
    );
    assert!(index.downloads(&native("aarch64").filename()) >= 1);
}

#[test]
fn an_sdist_is_built_on_the_target_and_cross_installs_can_be_turned_off() {
    let test = "an_sdist_is_built_on_the_target_and_cross_installs_can_be_turned_off";
    let Some(engine) = engine(test) else { return };
    let index = index();
    let ctx = Context::new().file("stack.toml", &stack(true));
    for installer in ["pip", "uv"] {
        let tag = engine.unique_tag(&format!("cross-src-{installer}"));
        let arg = format!("INSTALLER={installer}");
        let verb = if installer == "uv" {
            "uv pip install"
        } else {
            "pip install"
        };
        // The engine has MergeOp; without it (LAYERSTACK_MERGE=false, or dockerd 20.10) the
        // installed files are copied onto the image instead.
        let b = build(
            engine,
            &ctx,
            &index,
            &tag,
            &["--build-arg", "LAYERSTACK_MERGE=false", "--build-arg", &arg],
        );
        vertex_with(
            &b,
            "[layer base 1/1] lock group ",
            ": lsdemo-native 1.0 (install on linux/amd64)",
        );
        vertex_with(&b, "[layer base 1/1] lock group ", " (copy)");
        assert!(
            b.progress.matching("(merge)").is_empty(),
            "{}",
            b.progress.summary()
        );
        // lsdemo-src has no wheel for arm64: the resolve step keeps its sdist, which is built into
        // a wheel on (emulated) arm64, and everything is installed from the lock on linux/amd64;
        // the step itself is not emulated.
        let v = vertex_with(
            &b,
            "[service app 1/1] lock: build lsdemo-src 1.0 from its sdist",
            "(on linux/arm64, emulated)",
        );
        // uv's resolve finds the same sdist for the same image (the layer's groups do not
        // depend on the installer): the same build, answered from the cache.
        assert!(installer == "uv" || !v.cached, "{v:?}");
        vertex_with(
            &b,
            &format!("[service app 1/1] {verb} lsdemo-app==1.0"),
            ": resolve for linux/arm64 (on linux/amd64)",
        );
        vertex_with(
            &b,
            "[service app 1/1] lock group ",
            "lsdemo-src 1.0 (install on linux/amd64)",
        );
        assert!(
            b.progress.matching("(emulated on linux/arm64").is_empty(),
            "no step is emulated whole:\n{}",
            b.progress.summary()
        );
        // `--call lock` prints the sdist as the resolve found it.
        let lock = call_lock(engine, &ctx, &index, &arg);
        assert!(
            lock.contains("sdist = { url = \"") && lock.contains("lsdemo_src-1.0.zip"),
            "{installer}: {lock}"
        );
        let built_on = engine.docker_run_with(
        &[
            "--network=none",
            "--platform",
            "linux/arm64",
            "--entrypoint",
            "python3",
        ],
        &tag,
        &[
            "-c",
            "import lsdemo_src, lsdemo_native; print(lsdemo_src.BUILT_ON, lsdemo_native.WHEEL_TAG)",
        ],
    );
        assert_eq!(
            built_on.trim(),
            "aarch64 cp311-cp311-manylinux_2_17_aarch64",
            "{installer}: the sdist was built on (emulated) arm64"
        );
        engine.remove_image(&tag);
    }

    // `--build-arg LAYERSTACK_CROSS=false`: every install is emulated, and says so.
    let tag = engine.unique_tag("cross-off");
    let b = build(
        engine,
        &ctx,
        &index,
        &tag,
        &["--build-arg", "LAYERSTACK_CROSS=false"],
    );
    b.assert_vertex(
        "[layer base 1/1] pip install lsdemo-native==1.0 (emulated on linux/arm64: cross-install is off for this build)",
    );
    assert!(
        b.progress.matching("cross-install on").is_empty(),
        "{}",
        b.progress.summary()
    );
    let lines = inspect(engine, &tag);
    assert_eq!(lines[1], "cp311-cp311-manylinux_2_17_aarch64", "{lines:?}");
    engine.remove_image(&tag);
}

/// `--build-arg LAYERSTACK_RESOLVE=true`: the build platform's own pip and uv steps take the
/// same path as a foreign platform's — a resolve step writes a pylock.toml, installed as lock
/// groups and merged — and `--call lock` prints the build platform's lock without the arg.
#[test]
fn the_build_platform_resolves_into_a_lock_with_layerstack_resolve() {
    let test = "the_build_platform_resolves_into_a_lock_with_layerstack_resolve";
    let Some(engine) = integration_tests::engine_with_frontend(test) else {
        return;
    };
    if engine.is_old() {
        eprintln!("{test}: not applicable on the old engine (no MergeOp, no --call)");
        return;
    }
    let index = index();
    let ctx = Context::new().file("stack.toml", &stack(false));
    for installer in ["pip", "uv"] {
        let tag = engine.unique_tag(&format!("resolve-{installer}"));
        let arg = format!("INSTALLER={installer}");
        let b = build_for(
            engine,
            &ctx,
            &index,
            &tag,
            "linux/amd64",
            &[
                "--build-arg",
                &arg,
                "--build-arg",
                "LAYERSTACK_RESOLVE=true",
            ],
        );
        let verb = if installer == "uv" {
            "uv pip install"
        } else {
            "pip install"
        };
        for step in [
            format!("[layer base 1/1] {verb} lsdemo-native==1.0"),
            format!("[service app 1/1] {verb} lsdemo-app==1.0"),
        ] {
            vertex_with(&b, &step, ": resolve for linux/amd64 (on linux/amd64)");
            vertex_with(
                &b,
                &step,
                " (resolved for linux/amd64, installed on linux/amd64) (merge)",
            );
            for v in b.progress.matching(&step) {
                assert!(
                    v.name.contains(": resolve for linux/amd64")
                        || v.name
                            .contains("(resolved for linux/amd64, installed on linux/amd64)"),
                    "{installer}: a vertex that is neither the resolve nor the lock install: {}",
                    v.name
                );
            }
        }
        let lines = inspect_on(engine, &tag, "linux/amd64");
        assert_eq!(
            lines,
            [
                "x86_64",
                "cp311-cp311-manylinux_2_17_x86_64",
                "1.0",
                "1.0 cp311-cp311-manylinux_2_17_x86_64",
                "pip-check-ok",
                "1",
                "1",
                "lsdemo_x86only",
                "uninstall-ok",
            ],
            "{installer}: the amd64 image"
        );
        engine.remove_image(&tag);
        // Without the arg a build runs pip as before; `--call lock` resolves anyway.
        let lock = call_lock_for(engine, &ctx, &index, &arg, "linux/amd64");
        assert!(
            lock.contains("lsdemo_native-1.0-cp311-cp311-manylinux_2_17_x86_64.whl")
                && lock.contains("lsdemo_x86only-1.0-py3-none-any.whl")
                && !lock.contains("aarch64.whl"),
            "{installer}: {lock}"
        );
    }
    let tag = engine.unique_tag("resolve-off");
    let b = build_for(engine, &ctx, &index, &tag, "linux/amd64", &[]);
    b.assert_vertex("[layer base 1/1] pip install lsdemo-native==1.0");
    assert!(
        b.progress.matching(": resolve for").is_empty(),
        "{}",
        b.progress.summary()
    );
    engine.remove_image(&tag);
    // `resolve = true` on one image, in the stack: that image's steps resolve, its base's
    // run pip.
    let one = stack(false).replace("[services.app]\n", "[services.app]\nresolve = true\n");
    let ctx = ctx.file("stack.toml", &one);
    let tag = engine.unique_tag("resolve-app");
    let b = build_for(engine, &ctx, &index, &tag, "linux/amd64", &[]);
    b.assert_vertex("[layer base 1/1] pip install lsdemo-native==1.0");
    vertex_with(
        &b,
        "[service app 1/1] pip install lsdemo-app==1.0",
        ": resolve for linux/amd64 (on linux/amd64)",
    );
    vertex_with(
        &b,
        "[service app 1/1] pip install lsdemo-app==1.0",
        " (resolved for linux/amd64, installed on linux/amd64) (merge)",
    );
    assert_eq!(
        b.progress.matching(": resolve for").len(),
        1,
        "{}",
        b.progress.summary()
    );
    assert_eq!(inspect_on(engine, &tag, "linux/amd64")[4], "pip-check-ok");
    engine.remove_image(&tag);
}

/// `llb-gen lock resolve` runs `--call lock` for both platforms and writes one lock per image,
/// the platforms merged (markers where they differ); the stack then installs from those locks
/// (no resolve step, no emulation), and each platform gets what its own resolve picked.
#[test]
fn llb_gen_lock_resolve_writes_locks_the_stack_installs_from() {
    let test = "llb_gen_lock_resolve_writes_locks_the_stack_installs_from";
    let Some(engine) = engine(test) else { return };
    let index = index();
    let ctx = Context::new().file("stack.toml", &stack(false));
    let index_arg = format!("INDEX={}", index.url());
    let out = integration_tests::llb_gen(
        &[
            "lock",
            "resolve",
            &ctx.join("stack.toml"),
            "--context",
            ctx.path_str(),
            "--platform",
            "linux/arm64",
            "--platform",
            "linux/amd64",
            "--network",
            "host",
            "--build-arg",
            &index_arg,
            "--out",
            ctx.path_str(),
        ],
        ctx.path(),
    );
    eprintln!("{test}: llb-gen lock resolve printed:\n{out}");
    assert!(
        out.contains("pylock.base.toml: 1 package of `base` for linux/arm64, linux/amd64"),
        "{out}"
    );
    assert!(out.contains("pylock.app.toml: "), "{out}");
    let app = std::fs::read_to_string(ctx.path().join("pylock.app.toml")).unwrap();
    let base = std::fs::read_to_string(ctx.path().join("pylock.base.toml")).unwrap();
    eprintln!("{test}: pylock.app.toml:\n{app}\npylock.base.toml:\n{base}");
    for want in [
        "manylinux_2_17_aarch64.whl",
        "manylinux_2_17_x86_64.whl",
        "hashes = { sha256 = ",
    ] {
        assert!(
            base.contains(want),
            "pylock.base.toml lacks {want}:\n{base}"
        );
    }
    for want in [
        "name = \"lsdemo-armonly\"\nversion = \"1.0\"\nmarker = \"platform_machine == 'aarch64'\"",
        "name = \"lsdemo-x86only\"\nversion = \"1.0\"\nmarker = \"platform_machine == 'x86_64'\"",
        "name = \"lsdemo-app\"\nversion = \"1.0\"\nwheels",
    ] {
        assert!(app.contains(want), "pylock.app.toml lacks {want}:\n{app}");
    }
    // The app's lock leaves out what the base has.
    assert!(!app.contains("lsdemo-native"), "{app}");

    let python = engine.python_version("python:3.12-slim");
    let from_locks = format!(
        "# syntax={}\n\
         [stack]\nname = \"cross\"\ndefault = \"app\"\n\n\
         [args]\nINDEX = \"\"\n\n\
         [layers.base]\nfrom = \"python:3.12-slim\"\n\
         lock = {{ file = \"pylock.base.toml\", python-version = \"{python}\" }}\n\n\
         [services.app]\nfrom = \"base\"\n\
         lock = {{ file = \"pylock.app.toml\", python-version = \"{python}\" }}\n\
         cmd = [\"lsdemo-native\"]\n",
        frontend_image()
    );
    let ctx = ctx.file("stack.toml", &from_locks);
    for (platform, machine, only) in [
        ("linux/arm64", "aarch64", "lsdemo_armdep lsdemo_armonly"),
        ("linux/amd64", "x86_64", "lsdemo_x86only"),
    ] {
        let tag = engine.unique_tag(&format!("cross-resolved-{machine}"));
        let b = build_for(engine, &ctx, &index, &tag, platform, &[]);
        assert!(
            b.progress.matching("resolve for").is_empty()
                && b.progress.matching("(emulated").is_empty(),
            "{platform}: the committed locks need no resolve and no emulation\n{}",
            b.progress.summary()
        );
        let lines = inspect_on(engine, &tag, platform);
        let wheel = format!("cp311-cp311-manylinux_2_17_{machine}");
        assert_eq!(
            lines,
            [
                machine,
                &wheel,
                "1.0",
                &format!("1.0 {wheel}"),
                "pip-check-ok",
                "1",
                "1",
                only,
                "uninstall-ok",
            ],
            "{platform}: the image from the committed locks"
        );
        engine.remove_image(&tag);
    }
}
