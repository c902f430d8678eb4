//! PyTorch selection per platform and variant, proven with a local index that serves test
//! wheels named like the real builds: `torch-2.1.2+cpu` (x86_64) on the CPU index,
//! `torch-2.1.2+cu118` (x86_64) on the CUDA index, `torch-2.1.2` (aarch64) on the default index.
//! The stack overrides the index URLs; the real ones stay the defaults.

use integration_tests::pyindex::{PackageIndex, Wheel};
use integration_tests::{Context, Engine, frontend_image};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

fn wheel(version: &str, arch: &str) -> Wheel {
    Wheel::tagged("torch", version, &format!("py3-none-manylinux_2_17_{arch}"))
}

fn index() -> PackageIndex {
    PackageIndex::serve_indexes(&[
        ("simple", &[wheel("2.1.2", "aarch64")]),
        ("whl/cpu", &[wheel("2.1.2+cpu", "x86_64")]),
        ("whl/cu118", &[wheel("2.1.2+cu118", "x86_64")]),
    ])
}

fn stack(index: &PackageIndex) -> String {
    format!(
        r#"# syntax={frontend}
[stack]
install-env = {{ PIP_TRUSTED_HOST = "127.0.0.1" }}

[torch]
packages = {{ torch = "2.1.2" }}
cuda = "cu118"
[torch.index]
cpu = "{port}/whl/cpu"
cuda = "{port}/whl/{{cuda}}"
default = "{port}/simple"

[variants.cpu]
description = "CPU builds: +cpu wheels on amd64, regular wheels on arm64"
platforms = ["linux/amd64", "linux/arm64"]
torch = "cpu"

[variants.cuda]
description = "CUDA 11.8 builds for amd64"
platforms = ["linux/amd64"]
torch = "cuda"
env = {{ NVIDIA_VISIBLE_DEVICES = "all" }}

[layers.ml]
from = "python:3.12-slim"
torch = true

[services.app]
from = "ml"
cmd = ["python3", "-c", "import torch, platform; print(torch.__version__, torch.WHEEL_TAG, platform.machine())"]
"#,
        frontend = frontend_image(),
        port = format!("http://127.0.0.1:{}", index.port),
    )
}

/// Builds `--target TARGET --platform PLATFORM`, runs the image offline on that platform and
/// removes it: what `app` printed and the image's env.
fn build_and_run(engine: &Engine, ctx: &Context, target: &str, platform: &str) -> String {
    let (tag, _) = engine.build_target("torch", ctx.path(), target, &["--platform", platform]);
    let out = engine.docker_run_with(&["--network=none", "--platform", platform], &tag, &[]);
    let inspect = engine.image_inspect(&tag);
    engine.remove_image(&tag);
    format!("{} | {}", out.trim(), inspect["Config"]["Env"])
}

#[test]
fn amd64_gets_cpu_wheels_and_the_cuda_variant_gets_cu118() {
    let Some(engine) = engine("amd64_gets_cpu_wheels_and_the_cuda_variant_gets_cu118") else {
        return;
    };
    let idx = index();
    let ctx = Context::new().file("stack.toml", &stack(&idx));
    // Without a variant: the first one (cpu).
    let cpu = build_and_run(engine, &ctx, "app", "linux/amd64");
    assert!(
        cpu.starts_with("2.1.2+cpu py3-none-manylinux_2_17_x86_64 x86_64"),
        "{cpu}"
    );
    let cuda = build_and_run(engine, &ctx, "app@cuda", "linux/amd64");
    assert!(
        cuda.starts_with("2.1.2+cu118 py3-none-manylinux_2_17_x86_64 x86_64"),
        "{cuda}"
    );
    assert!(
        cuda.contains("NVIDIA_VISIBLE_DEVICES=all"),
        "the variant's env: {cuda}"
    );
    assert!(!cpu.contains("NVIDIA_VISIBLE_DEVICES"), "{cpu}");
    assert_eq!(
        idx.downloads("torch-2.1.2+cpu-py3-none-manylinux_2_17_x86_64.whl"),
        1
    );
    assert_eq!(
        idx.downloads("torch-2.1.2+cu118-py3-none-manylinux_2_17_x86_64.whl"),
        1
    );
    assert_eq!(
        idx.downloads("torch-2.1.2-py3-none-manylinux_2_17_aarch64.whl"),
        0
    );
}

#[test]
fn arm64_gets_the_regular_wheel() {
    let Some(engine) = engine("arm64_gets_the_regular_wheel") else {
        return;
    };
    let idx = index();
    let ctx = Context::new().file("stack.toml", &stack(&idx));
    if engine.is_old() {
        // The legacy image store holds one platform per name: no arm64 python:3.12-slim, and
        // nothing to pull here. The frontend names the image and the platform.
        let failed = engine
            .try_buildx_build(&[
                "--progress=plain",
                "--network=host",
                "--platform",
                "linux/arm64",
                "-f",
                &ctx.join("stack.toml"),
                "--target",
                "app@cpu",
                ctx.path_str(),
            ])
            .expect_err("no linux/arm64 base image on the old engine");
        let err = &failed.output.stderr;
        assert!(
            err.contains(
                "cannot resolve base image `docker.io/library/python:3.12-slim` for linux/arm64"
            ),
            "{err}"
        );
        return;
    }
    let arm = build_and_run(engine, &ctx, "app@cpu", "linux/arm64");
    assert!(
        arm.starts_with("2.1.2 py3-none-manylinux_2_17_aarch64 aarch64"),
        "{arm}"
    );
    assert_eq!(
        idx.downloads("torch-2.1.2-py3-none-manylinux_2_17_aarch64.whl"),
        1
    );
}

#[test]
fn cuda_on_arm64_is_refused_before_anything_runs() {
    let Some(engine) = engine("cuda_on_arm64_is_refused_before_anything_runs") else {
        return;
    };
    let idx = index();
    let ctx = Context::new().file("stack.toml", &stack(&idx));
    let failed = engine
        .try_buildx_build(&[
            "--progress=plain",
            "--platform",
            "linux/arm64",
            "-f",
            &ctx.join("stack.toml"),
            "--target",
            "app@cuda",
            ctx.path_str(),
        ])
        .expect_err("no CUDA builds on arm64");
    let err = &failed.output.stderr;
    assert!(
        err.contains("variant `cuda` is not built for linux/arm64"),
        "{err}"
    );
    assert!(err.contains("stack.toml:"), "{err}");
    assert_eq!(
        idx.downloads("torch-2.1.2+cu118-py3-none-manylinux_2_17_x86_64.whl"),
        0
    );
}
