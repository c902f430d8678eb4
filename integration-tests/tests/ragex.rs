//! `examples/ragex` (seed 002): one stack.toml with a `cpu` variant (linux/amd64 + linux/arm64)
//! and a `cuda` variant (linux/amd64, nvidia/cuda base), built system → ml → app.
//!
//! The real torch wheels are hundreds of MB (GBs for CUDA), so the example is built from a copy
//! whose `[torch.index]` points at a local index on 127.0.0.1 serving small test wheels named
//! like the real builds: `torch-2.1.2+cpu` / `torchvision-0.16.2+cpu` (x86_64) at `/whl/cpu`,
//! `torch-2.1.2` / `torchvision-0.16.2` (aarch64) at `/simple`, `+cu118` at `/whl/cu118`.
//! Everything else (apt, tree-sitter, tqdm, pathspec) comes from the real Debian and PyPI.
//!
//! The example itself declares no `[torch.index]`: the real download.pytorch.org indexes are
//! the defaults, and `[torch.index]` values are not `${ARG}`-interpolated, so `--build-arg`
//! cannot redirect them; hence the edited copy.
//!
//! - `ragex_app_builds_and_runs_on_amd64`: `--target app` (default variant cpu), run offline.
//! - `ragex_cpu_variant_builds_for_amd64_and_arm64`: `--platform linux/amd64,linux/arm64
//!   --target app@cpu` in one build. Needs the arm64 `python:3.11-slim` (scripts/base-images.sh);
//!   without it the test prints a loud SKIPPED line, except under `CI=true`, where it runs
//!   (and fails if the image is missing).
//! - `ragex_cuda_variant_is_planned_but_not_buildable_here`: nvidia/cuda cannot be pulled here,
//!   so the cuda variant is checked through `llb-gen llb` (and the arm64 refusal through the
//!   frontend too when an engine is there).

use std::path::PathBuf;
use std::process::Command;

use integration_tests::pyindex::{PackageIndex, Wheel};
use integration_tests::{
    Build, Context, Engine, arm64_emulation, copy_dir, exec, frontend_image, repo_root,
};
use serde_json::Value;

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

fn example() -> PathBuf {
    repo_root().join("examples").join("ragex")
}

// ------------------------------------------------------------------ the index --

fn wheel(name: &str, version: &str, arch: &str) -> Wheel {
    Wheel::tagged(name, version, &format!("py3-none-manylinux_2_17_{arch}"))
}

/// download.pytorch.org (`/whl/cpu`, `/whl/cu118`) and the PyPI builds for arm64 (`/simple`).
fn index() -> PackageIndex {
    PackageIndex::serve_indexes(&[
        (
            "simple",
            &[
                wheel("torch", "2.1.2", "aarch64"),
                wheel("torchvision", "0.16.2", "aarch64"),
            ],
        ),
        (
            "whl/cpu",
            &[
                wheel("torch", "2.1.2+cpu", "x86_64"),
                wheel("torchvision", "0.16.2+cpu", "x86_64"),
            ],
        ),
        (
            "whl/cu118",
            &[
                wheel("torch", "2.1.2+cu118", "x86_64"),
                wheel("torchvision", "0.16.2+cu118", "x86_64"),
            ],
        ),
    ])
}

const AMD64_WHEELS: [&str; 2] = [
    "torch-2.1.2+cpu-py3-none-manylinux_2_17_x86_64.whl",
    "torchvision-0.16.2+cpu-py3-none-manylinux_2_17_x86_64.whl",
];
const ARM64_WHEELS: [&str; 2] = [
    "torch-2.1.2-py3-none-manylinux_2_17_aarch64.whl",
    "torchvision-0.16.2-py3-none-manylinux_2_17_aarch64.whl",
];

// --------------------------------------------------------- the edited copy --

/// The example's stack.toml with the test's frontend image on line 1, any `[torch.index]`
/// table of the example dropped, and one pointing at `idx` appended.
fn with_local_torch_index(stack: &str, idx: &PackageIndex) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for (i, line) in stack.lines().enumerate() {
        if i == 0 && line.starts_with("# syntax=") {
            out.push_str(&format!("# syntax={}\n", frontend_image()));
            continue;
        }
        let t = line.trim();
        if t.starts_with('[') {
            skipping = t.split('#').next().unwrap_or("").trim() == "[torch.index]";
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "\n# Added by integration-tests/tests/ragex.rs: small test wheels instead of the real ones.\n\
         [torch.index]\ncpu = \"{}\"\ncuda = \"{}\"\ndefault = \"{}\"\n\n\
         # pip caches downloads from a plain-http index only when it trusts the host: then each\n\
         # wheel is fetched once, however many steps (probe, install) read it.\n\
         [stack.install-env]\nPIP_TRUSTED_HOST = \"127.0.0.1\"\n",
        idx.index_url("whl/cpu"),
        idx.index_url("whl/{cuda}"),
        idx.index_url("simple"),
    ));
    out
}

/// A copy of examples/ragex with the local index. The entrypoint loses its executable bit in
/// the copy, so the image's 0755 can only come from the stack's `mode = "0755"`.
fn context(idx: &PackageIndex) -> Context {
    let ctx = Context::new();
    copy_dir(&example(), ctx.path());
    let text = std::fs::read_to_string(example().join("stack.toml")).unwrap();
    assert!(
        !text.contains("127.0.0.1")
            && !text
                .lines()
                .any(|l| l.trim_start().starts_with("[torch.index]")),
        "the example itself must keep the real torch indexes (the defaults)"
    );
    std::fs::write(
        ctx.path().join("stack.toml"),
        with_local_torch_index(&text, idx),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ep = ctx.path().join("docker/entrypoint.sh");
        std::fs::set_permissions(&ep, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    ctx
}

/// The files of the embedding model the `ml` layer downloads (examples/ragex/stack.toml's
/// fetch_model.py list), as a hub mirror on 127.0.0.1 serves them: small stand-ins (the real
/// all-MiniLM-L6-v2 is 90 MB on huggingface.co, which tests never reach).
const MODEL_FILES: [&str; 8] = [
    "config.json",
    "modules.json",
    "sentence_bert_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "model.safetensors",
    "1_Pooling/config.json",
];
const MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

fn model_file(f: &str) -> Vec<u8> {
    format!("{f} of {MODEL} (test stand-in)\n")
        .repeat(1 + f.len() * 37)
        .into_bytes()
}

/// A hub mirror on 127.0.0.1 (`HF_ENDPOINT`): `/{repo}/resolve/main/{file}` serves the
/// model's files; anything else is a 404 (so a wrong URL fails the build).
fn model_hub() -> u16 {
    use std::sync::OnceLock;
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        integration_tests::http::serve(|_method, path| {
            let prefix = format!("/{MODEL}/resolve/main/");
            match path.strip_prefix(&prefix) {
                Some(f) if MODEL_FILES.contains(&f) => integration_tests::http::Response::ok(
                    "application/octet-stream",
                    "no-store",
                    model_file(f),
                ),
                _ => integration_tests::http::Response::not_found(),
            }
        })
    })
}

/// `--target TARGET --platform PLATFORMS` of the edited copy (see [`Engine::build_target`]),
/// with the model downloaded from the local hub mirror.
fn build(engine: &Engine, ctx: &Context, target: &str, platforms: &str) -> (String, Build) {
    let hub = format!("HF_ENDPOINT=http://127.0.0.1:{}", model_hub());
    engine.build_target(
        "ragex",
        ctx.path(),
        target,
        &["--platform", platforms, "--build-arg", &hub],
    )
}

/// `docker run --rm --network=none --platform P TAG ARGS…` (through the image's entrypoint).
fn run(engine: &Engine, tag: &str, platform: &str, args: &[&str]) -> String {
    engine.docker_run_with(&["--network=none", "--platform", platform], tag, args)
}

/// `ragex info` (the image's default command) as JSON.
fn info(engine: &Engine, tag: &str, platform: &str) -> Value {
    engine.run_json(&["--network=none", "--platform", platform], tag, &[])
}

/// What every cpu image must be, whatever the platform.
fn assert_app(
    engine: &Engine,
    tag: &str,
    platform: &str,
    machine: &str,
    torch: &str,
    vision: &str,
) {
    let i = info(engine, tag, platform);
    eprintln!("ragex: {platform}: ragex info: {i}");
    assert_eq!(i["machine"], machine, "{i}");
    assert_eq!(i["torch"], torch, "{i}");
    assert_eq!(i["torchvision"], vision, "{i}");
    assert_eq!(i["user"], "appuser", "{i}");
    assert_eq!(i["cwd"], "/app", "{i}");
    assert_eq!(i["device"], "cpu", "the variant's env: {i}");
    // The model the ml layer downloaded after pip, every file as the hub served it.
    let dir = format!("/opt/models/{MODEL}");
    assert_eq!(i["model"]["dir"], dir.as_str(), "{i}");
    for f in MODEL_FILES {
        let bytes = model_file(f);
        let want: String = <sha2::Sha256 as sha2::Digest>::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(i["model"]["files"][f]["sha256"], want.as_str(), "{f}: {i}");
        assert_eq!(i["model"]["files"][f]["size"], bytes.len(), "{f}: {i}");
    }
    assert!(
        i["ripgrep"]
            .as_str()
            .is_some_and(|v| v.starts_with("ripgrep ")),
        "ripgrep from the system layer: {i}"
    );

    // The entrypoint passes the CLI's subcommands to ragex: ripgrep via subprocess…
    let found = run(engine, tag, platform, &["search", "def main", "/app/src"]);
    assert!(
        found.contains("ragex/__main__.py:") && found.contains("def main("),
        "{found}"
    );
    let json = run(
        engine,
        tag,
        platform,
        &[
            "search",
            "--json",
            "-i",
            "RIPGREP",
            "/app/src",
            "--exclude",
            "info.py",
        ],
    );
    let v: Value = serde_json::from_str(json.trim()).expect("search --json");
    let paths: Vec<&str> = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"ragex/search.py"), "{json}");
    assert!(
        !paths.contains(&"ragex/info.py"),
        "--exclude (pathspec): {json}"
    );
    // …tree-sitter from the ml layer…
    let syms: Value = serde_json::from_str(
        run(
            engine,
            tag,
            platform,
            &["symbols", "--json", "/app/src/ragex"],
        )
        .trim(),
    )
    .expect("symbols --json");
    let has = |kind: &str, name: &str| {
        syms.as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == kind && s["name"] == name)
    };
    assert!(has("def", "main") && has("class", "Match"), "{syms}");
    // …and anything else runs as it is.
    let shell = run(
        engine,
        tag,
        platform,
        &[
            "sh",
            "-c",
            "id -un; stat -c '%a %U' /entrypoint.sh; rg --version | head -n1; git --version; curl --version | head -n1",
        ],
    );
    let lines: Vec<&str> = shell.lines().collect();
    assert_eq!(lines[0], "appuser", "{shell}");
    assert_eq!(
        lines[1], "755 appuser",
        "mode = \"0755\", owned by the user: {shell}"
    );
    assert!(lines[2].starts_with("ripgrep "), "{shell}");
    assert!(lines[3].starts_with("git version"), "{shell}");
    assert!(lines[4].starts_with("curl "), "{shell}");
}

fn assert_config(engine: &Engine, tag: &str) {
    let c = &engine.image_inspect(tag)["Config"];
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/entrypoint.sh"]),
        "{c}"
    );
    assert_eq!(c["Cmd"], serde_json::json!(["info"]), "{c}");
    assert_eq!(c["User"], "appuser", "{c}");
    assert_eq!(c["WorkingDir"], "/app", "{c}");
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for e in [
        "RAGEX_DEVICE=cpu",
        "PYTHONPATH=/app/src",
        "PYTHONUNBUFFERED=1",
    ] {
        assert!(env.contains(&e), "{e} in {env:?}");
    }
    assert!(
        !env.iter().any(|e| e.starts_with("NVIDIA")),
        "no CUDA env in the cpu variant: {env:?}"
    );
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "ragex");
}

// ---------------------------------------------------------------------- tests --

#[test]
fn ragex_app_builds_and_runs_on_amd64() {
    let Some(engine) = engine("ragex_app_builds_and_runs_on_amd64") else {
        return;
    };
    let idx = index();
    let ctx = context(&idx);
    // No variant in the target: the default one, cpu.
    let (tag, b) = build(engine, &ctx, "app", "linux/amd64");
    for v in [
        "[layer system 1/3] apt-get install ripgrep curl git",
        "[layer system 2/3] useradd appuser",
        "[layer ml 1/4] pip install torch==2.1.2+cpu torchvision==0.16.2+cpu",
        "[layer ml 2/4] pip install -r requirements/base-ml.txt",
        "[service app 1/3] pip install -r requirements/app.txt",
        "[service app 2/3] copy src",
        "[service app 3/3] copy docker/entrypoint.sh",
        // The seed's import check after pip (`at = "after-python"`).
        "[layer ml 3/4] run python3 -c 'import tree_sitter, tree_sitter_python'",
    ] {
        b.assert_vertex(v);
    }
    assert_app(
        engine,
        &tag,
        "linux/amd64",
        "x86_64",
        "2.1.2+cpu",
        "0.16.2+cpu",
    );
    assert_config(engine, &tag);
    for w in AMD64_WHEELS {
        assert_eq!(idx.downloads(w), 1, "{w}");
    }
    for w in ARM64_WHEELS {
        assert_eq!(idx.downloads(w), 0, "{w}");
    }
    engine.remove_image(&tag);
}

#[test]
fn ragex_cpu_variant_builds_for_amd64_and_arm64() {
    let test = "ragex_cpu_variant_builds_for_amd64_and_arm64";
    let Some(engine) = engine(test) else {
        return;
    };
    if engine.is_old() {
        // dockerd 20.10 (legacy image store): buildx's docker driver refuses a multi-platform
        // build before the frontend runs.
        let idx = index();
        let ctx = context(&idx);
        let failed = engine
            .try_buildx_build(&[
                "--network=host",
                "--platform",
                "linux/amd64,linux/arm64",
                "-f",
                &ctx.join("stack.toml"),
                "--target",
                "app@cpu",
                ctx.path_str(),
            ])
            .expect_err("no multi-platform build on the old engine");
        let err = &failed.output.stderr;
        assert!(
            err.contains("Multi-platform build is not supported for the docker driver"),
            "{err}"
        );
        return;
    }
    // linux/arm64 needs emulation to run the image (skipped loudly without it, a failure
    // under CI).
    if !arm64_emulation(engine, test) {
        return;
    }
    let idx = index();
    let ctx = context(&idx);
    // The README's command: both platforms of the cpu variant in one build, one image index.
    let (tag, b) = build(engine, &ctx, "app@cpu", "linux/amd64,linux/arm64");
    b.assert_vertex("pip install torch==2.1.2+cpu torchvision==0.16.2+cpu");
    b.assert_vertex("pip install torch==2.1.2 torchvision==0.16.2");
    assert_app(engine, &tag, "linux/arm64", "aarch64", "2.1.2", "0.16.2");
    assert_app(
        engine,
        &tag,
        "linux/amd64",
        "x86_64",
        "2.1.2+cpu",
        "0.16.2+cpu",
    );
    assert_config(engine, &tag);
    // The arm64 overlay of `system` (the seed's arm64 base): compilers and no GPUs, on arm64
    // only.
    b.assert_vertex("apt-get install ripgrep curl git gcc g++");
    let probe = [
        "sh",
        "-c",
        "command -v gcc || echo no-gcc; echo \"CVD=${CUDA_VISIBLE_DEVICES-unset}\"",
    ];
    let arm = run(engine, &tag, "linux/arm64", &probe);
    assert_eq!(
        arm.lines().collect::<Vec<_>>(),
        ["/usr/bin/gcc", "CVD="],
        "arm64: {arm}"
    );
    let amd = run(engine, &tag, "linux/amd64", &probe);
    assert_eq!(
        amd.lines().collect::<Vec<_>>(),
        ["no-gcc", "CVD=unset"],
        "amd64: {amd}"
    );
    // amd64 installs with pip (its cache mount: one download). arm64's are resolved by pip on
    // amd64 (a pip without PEP 658 metadata from this index downloads the wheel to read its
    // METADATA), then fetched once more by BuildKit as the checksummed source the lock group
    // installs: at most two, whatever reads them.
    for w in AMD64_WHEELS {
        assert_eq!(idx.downloads(w), 1, "{w}");
    }
    for w in ARM64_WHEELS {
        assert!(
            (1..=2).contains(&idx.downloads(w)),
            "{w}: {}",
            idx.downloads(w)
        );
    }
    engine.remove_image(&tag);
}

/// `cargo run -q -p llb-gen -- ARGS` → (exit code, stdout, stderr).
fn llb_gen(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "-q", "--manifest-path"])
        .arg(repo_root().join("Cargo.toml"))
        .args(["-p", "llb-gen", "--"])
        .args(args)
        .current_dir(repo_root());
    let out = exec(&mut cmd, None).expect("cargo run -p llb-gen");
    (out.status.code(), out.stdout, out.stderr)
}

/// The 1-based line of `needle` after the line `section` in `text`.
fn line_after(text: &str, section: &str, needle: &str) -> usize {
    let start = text
        .lines()
        .position(|l| l.trim() == section)
        .unwrap_or_else(|| panic!("no {section}"));
    start
        + 1
        + text
            .lines()
            .skip(start)
            .position(|l| l.trim_start().starts_with(needle))
            .unwrap_or_else(|| panic!("no {needle} after {section}"))
}

#[test]
fn ragex_cuda_variant_is_planned_but_not_buildable_here() {
    let stack = example().join("stack.toml");
    let stack_s = stack.to_string_lossy().into_owned();
    let text = std::fs::read_to_string(&stack).unwrap();

    // The whole matrix is valid: every target × variant × platform.
    let (code, out, err) = llb_gen(&["check", &stack_s]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = llb_gen(&["targets", &stack_s]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("cpu (default)") && out.contains("cuda:"),
        "{out}"
    );

    // The cuda variant: nvidia/cuda as the system layer's base, Python from apt, cu118 torch
    // from the real cu118 index.
    let (code, llb, err) = llb_gen(&["llb", &stack_s, "--target", "app@cuda", "--format", "text"]);
    assert_eq!(code, Some(0), "{err}");
    for s in [
        "docker-image://docker.io/nvidia/cuda:11.8.0-runtime-ubuntu22.04",
        "apt-get install -y --no-install-recommends ripgrep curl git python3 python3-pip",
        "torch==2.1.2+cu118",
        "torchvision==0.16.2+cu118",
        "--extra-index-url https://download.pytorch.org/whl/cu118",
        "RAGEX_DEVICE=cuda",
    ] {
        assert!(llb.contains(s), "no {s:?} in:\n{llb}");
    }
    assert!(!llb.contains("python:3.11-slim"), "{llb}");
    // The default variant keeps the real cpu index and python:3.11-slim.
    let (code, llb, err) = llb_gen(&["llb", &stack_s, "--target", "app", "--format", "text"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        llb.contains("docker-image://docker.io/library/python:3.11-slim")
            && llb.contains(
                "--extra-index-url https://download.pytorch.org/whl/cpu torch==2.1.2+cpu torchvision==0.16.2+cpu"
            ),
        "{llb}"
    );

    // CUDA on arm64 is refused at the cuda variant's `platforms` line.
    let line = line_after(&text, "[variants.cuda]", "platforms");
    let (code, out, err) = llb_gen(&[
        "llb",
        &stack_s,
        "--platform",
        "linux/arm64",
        "--target",
        "app@cuda",
        "--format",
        "text",
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("variant `cuda` is not built for linux/arm64"),
        "{err}"
    );
    assert!(
        err.contains(&format!("stack.toml:{line}:")),
        "line {line}: {err}"
    );
    assert!(err.contains("variants.cuda.platforms"), "{err}");
    assert!(err.contains("platforms = [\"linux/amd64\"]"), "{err}");

    // The same through the frontend, before anything is pulled or run.
    let Some(engine) = engine("ragex_cuda_variant_is_planned_but_not_buildable_here") else {
        return;
    };
    let idx = index();
    let ctx = context(&idx);
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
    assert!(err.contains(&format!("stack.toml:{line}")), "{err}");
    assert_eq!(
        idx.downloads("torch-2.1.2+cu118-py3-none-manylinux_2_17_x86_64.whl"),
        0
    );
}
