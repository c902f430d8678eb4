//! The seed examples (`examples/fks`, `examples/tax-agent`, `examples/autoscaler`,
//! `examples/clm`) built through `# syntax=` with the layerstack frontend, then run offline
//! (`--network=none`) and inspected.
//!
//! CI runs one representative target (or two) per example. `every_example_target_builds`
//! builds and smoke-runs EVERY target of every example, multi-service included; it runs only
//! with `LAYERSTACK_FULL=1` (the full integration run) and says so when skipped.
//!
//! clm's notebook-processor is a micromamba environment from conda-forge; here (no conda channel
//! is reachable) it is built with `--build-arg`s pointing at a local channel and the micromamba
//! stand-in image, see [`ClmConda`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use integration_tests::conda::{
    CondaChannel, CondaPackage, MICROMAMBA_IMAGE, ensure_micromamba_image,
};
use integration_tests::{Build, Context, Engine, copy_dir, engine_with_frontend, repo_root, run};
use serde_json::Value;

fn engine(test: &str) -> Option<&'static Engine> {
    engine_with_frontend(test)
}

fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `--target TARGET [EXTRA…]` of an example (its directory is the context), timed on stderr as
/// example `name` (see [`Engine::build_target`]).
fn build(engine: &Engine, name: &str, dir: &Path, target: &str, extra: &[&str]) -> (String, Build) {
    engine.build_target(name, dir, target, extra)
}

/// `docker run --rm --network=none TAG ARGS…`, stdout as one JSON value.
fn run_json(engine: &Engine, tag: &str, args: &[&str]) -> Value {
    engine.run_json(&["--network=none"], tag, args)
}

/// Starts the image's server (CMD) in the background inside one container and runs the
/// image's own declared healthcheck (`CMD-SHELL`) until it passes, for at most ~10 s.
fn healthcheck_passes(engine: &Engine, tag: &str, server: &str) -> String {
    let inspect = engine.image_inspect(tag);
    let test = &inspect["Config"]["Healthcheck"]["Test"];
    assert_eq!(test[0], "CMD-SHELL", "{test}");
    let check = test[1].as_str().unwrap();
    let script = format!(
        "{server} >/tmp/server.log 2>&1 & for i in $(seq 1 40); do if ( {check} ); then exit 0; fi; sleep 0.25; done; cat /tmp/server.log; exit 1"
    );
    engine.docker_run(tag, &["sh", "-c", &script])
}

fn env_of(engine: &Engine, tag: &str) -> Vec<String> {
    engine.image_inspect(tag)["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect()
}

// ------------------------------------------------------------------------ fks (seed 000) --

#[test]
fn fks_services_use_the_c_library_compiled_once_in_a_build_only_layer() {
    let Some(engine) = engine("fks_services_use_the_c_library_compiled_once_in_a_build_only_layer")
    else {
        return;
    };
    let (name, dir) = ("fks", example("fks"));
    const ARTIFACT: &str = "[layer ta-lite] artifact /usr/local/lib/libta_lite.so.*.*.*";

    // ML service: cpu → ml → ai, and the library out of the build-only ta-lite layer.
    let (ai, b) = build(engine, name, &dir, "ai", &[]);
    for v in [
        "[layer ta-lite 1/2] apt-get install build-essential",
        "[layer ta-lite] context native/ta-lite",
        "[layer ta-lite 2/2] run make -C native/ta-lite install",
        ARTIFACT,
        "[layer cpu 1/3] apt-get install curl",
        "[layer ml 1/1] pip install -r requirements/ml.txt",
        "[service ai 1/4] copy --from=ta-lite /usr/local/lib/libta_lite.so.*.*.*",
        "[service ai 3/4] copy apps/ai",
        "[service ai 4/4] run ldconfig",
    ] {
        b.assert_vertex(v);
    }
    let out = run_json(engine, &ai, &[]);
    assert_eq!(out["service"], "ai");
    assert_eq!(
        out["ta_lite"], "0.4.0",
        "the C library's own version string"
    );
    assert_eq!(out["numpy"], "2.4.6");
    assert_eq!(
        out["sma_matches_numpy"], true,
        "ta-lite's SMA must equal numpy's: {out}"
    );
    assert!(
        ["buy", "sell", "hold"].contains(&out["action"].as_str().unwrap()),
        "{out}"
    );

    // CPU service on the cpu layer: the compile and the extraction of the library (a vertex
    // that depends only on ta-lite and the pattern) come from the cache that `ai` filled (their
    // digests differ between two builds only by the build's context session), the library is
    // found through the linker cache that the service's `ldconfig` after the copies refreshed,
    // and the declared healthcheck passes against the running server.
    let (api, b2) = build(engine, name, &dir, "api", &[]);
    for v in [ARTIFACT, "[layer ta-lite 2/2] run make"] {
        let again = b2
            .vertex(v)
            .unwrap_or_else(|| panic!("{v}: {}", b2.progress.summary()));
        assert!(again.cached, "built once, by the ai build: {again:?}");
    }
    let out = run_json(engine, &api, &["python3", "-m", "apps.api", "--once"]);
    assert_eq!(out["library"], "libta_lite.so.0", "{out}");
    let rsi = out["rsi_14"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&rsi), "{out}");
    healthcheck_passes(engine, &api, "python3 -m apps.api");

    // Only the versioned library was copied (as root, the builder's owner), ldconfig made the
    // soname link; the toolchain, the header and the sources stayed in the builder.
    let files = engine.docker_run(
        &api,
        &[
            "sh",
            "-c",
            "id -un; ls -l /usr/local/lib/ | grep ta_lite; \
             for t in cc gcc make; do command -v $t || echo \"no $t\"; done; \
             ls /usr/local/include/ta_lite.h 2>&1 || true",
        ],
    );
    assert!(files.starts_with("appuser\n"), "{files}");
    assert!(
        files.contains("libta_lite.so.0 -> libta_lite.so.0.4.0"),
        "ldconfig made the soname link: {files}"
    );
    assert!(
        files.contains("root root") && files.contains("libta_lite.so.0.4.0"),
        "{files}"
    );
    for t in ["no cc", "no gcc", "no make"] {
        assert!(files.contains(t), "the toolchain is not shipped: {files}");
    }
    assert!(files.contains("No such file"), "no header: {files}");
    // The sources and the build tree were a mount of the builder's run step: no file of them
    // is in the image (BuildKit 0.8 leaves the empty mount point).
    let sources = engine.docker_run(
        &api,
        &[
            "sh",
            "-c",
            "find / -xdev \\( -name ta_lite.c -o -name ta_lite.o -o -path '/run/layerstack/*' -type f \\) 2>/dev/null | wc -l",
        ],
    );
    assert_eq!(sources.trim(), "0", "{sources}");
    let c = &engine.image_inspect(&api)["Config"];
    assert_eq!(c["User"], "appuser");
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "fks-api");
    for t in [ai, api] {
        engine.remove_image(&t);
    }
}

// ------------------------------------------------------------------ tax-agent (seed 001) --

#[test]
fn tax_agent_ml_service_on_base_ml_and_a_two_stage_service() {
    let Some(engine) = engine("tax_agent_ml_service_on_base_ml_and_a_two_stage_service") else {
        return;
    };
    let (name, dir) = ("tax-agent", example("tax-agent"));

    let (retriever, b) = build(engine, name, &dir, "svc-rag-retriever", &[]);
    for v in [
        "[layer base-runtime 4/4] pip install -r libs/requirements-base.txt",
        "[layer base-ml 1/1] pip install -r libs/requirements-ml.txt",
        "[service svc-rag-retriever 1/3] pip install -r apps/svc_rag_retriever/requirements.txt",
        "[service svc-rag-retriever 2/3] copy libs",
    ] {
        b.assert_vertex(v);
    }
    let out = run_json(
        engine,
        &retriever,
        &[
            "python",
            "-m",
            "apps.svc_rag_retriever",
            "--once",
            "persnal alowance",
        ],
    );
    assert_eq!(
        out["corrected"], "personal allowance",
        "rapidfuzz (base-ml) corrects the query: {out}"
    );
    assert_eq!(out["hits"][0]["doc"], "personal-allowance.md", "{out}");
    let inspect = engine.image_inspect(&retriever);
    let c = &inspect["Config"];
    assert_eq!(c["User"], "appuser");
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(
        c["Labels"]["org.opencontainers.image.base.name"],
        "gitea.example.com/harkon/base-ml:v1.0.1"
    );
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "v1.0.1");
    assert_eq!(
        c["Labels"]["org.opencontainers.image.title"],
        "svc-rag-retriever"
    );
    healthcheck_passes(
        engine,
        &retriever,
        "uvicorn apps.svc_rag_retriever.main:app --port 8000",
    );

    // Non-ML service: deps in a venv built in a builder stage, copied into python slim.
    let (ingestion, b) = build(
        engine,
        name,
        &dir,
        "svc-ingestion",
        &["--build-arg", "BASE_VERSION=v1.0.2"],
    );
    b.assert_vertex("[service svc-ingestion venv 1/2] python3 -m venv /opt/venv");
    b.assert_vertex("[service svc-ingestion 1/3] copy venv /opt/venv");
    let out = run_json(
        engine,
        &ingestion,
        &["python", "-m", "apps.svc_ingestion", "--once"],
    );
    assert_eq!(out["python"], "/opt/venv/bin/python", "{out}");
    assert_eq!(out["status"], 201, "{out}");
    assert_eq!(out["roundtrip"], true, "{out}");
    assert_eq!(out["python_multipart"], "0.0.34");
    let c = &engine.image_inspect(&ingestion)["Config"];
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "v1.0.2");
    assert_eq!(c["User"], "appuser");
    assert!(
        env_of(engine, &ingestion)
            .iter()
            .any(|e| e.starts_with("PATH=/opt/venv/bin:")),
        "the venv is first on PATH"
    );
    let clean = engine.docker_run(
        &ingestion,
        &[
            "sh",
            "-c",
            "command -v curl gcc || true; /usr/bin/python3 -c 'import fastapi' 2>&1 | tail -1",
        ],
    );
    assert!(
        clean.contains("No module named"),
        "fastapi only in the venv: {clean}"
    );
    assert!(
        !clean.contains("/curl") && !clean.contains("/gcc"),
        "no curl or compiler in the slim image: {clean}"
    );
    for t in [retriever, ingestion] {
        engine.remove_image(&t);
    }
}

// ----------------------------------------------------------------- autoscaler (seed 003) --

#[test]
fn autoscaler_code_change_reruns_only_the_copy() {
    let Some(engine) = engine("autoscaler_code_change_reruns_only_the_copy") else {
        return;
    };
    // A copy of the example, so the test can edit a template.
    let ctx = Context::new();
    copy_dir(&example("autoscaler"), ctx.path());

    let (first, _) = build(engine, "autoscaler", ctx.path(), "autoscaler", &[]);
    let out = run_json(engine, &first, &["python3", "-m", "src.operator", "--once"]);
    assert_eq!(out["kubernetes"], "37.0.2", "{out}");
    assert_eq!(out["flask"], "3.1.3", "{out}");
    assert_eq!(out["dashboard_title"], "Smart autoscaler", "{out}");
    assert_eq!(out["dashboard_rows"], 3, "{out}");
    assert_eq!(out["decisions"][0]["action"], "scale-up", "{out}");
    let c = &engine.image_inspect(&first)["Config"];
    assert_eq!(c["User"], "10001", "numeric, for runAsNonRoot");
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "0.0.23");
    let owner = engine.docker_run(
        &first,
        &[
            "stat",
            "-c",
            "%u %n",
            "/app/src/operator.py",
            "/app/templates/dashboard.html",
        ],
    );
    assert_eq!(owner.matches("10001 ").count(), 2, "{owner}");

    // A template-only change: the base layer (apt, pip) is cached, only the copy runs. A nonce
    // keeps the edited template new to the build cache on every run.
    let nonce = integration_tests::nonce();
    let title = format!("Smart autoscaler ({nonce})");
    let html = ctx.path().join("templates/dashboard.html");
    let text = std::fs::read_to_string(&html).unwrap();
    std::fs::write(
        &html,
        text.replace(
            "<title>Smart autoscaler</title>",
            &format!("<title>{title}</title>"),
        ),
    )
    .unwrap();
    let t0 = Instant::now();
    let (second, b) = build(engine, "autoscaler", ctx.path(), "autoscaler", &[]);
    let rebuild = t0.elapsed();
    b.progress
        .assert_cached("base layer step", |v| v.name.starts_with("[layer base "));
    b.progress
        .assert_cached("copy src", |v| v.name.contains("copy src"));
    let templates = b.progress.matching("copy templates");
    assert!(
        templates.iter().any(|v| !v.cached),
        "the template copy must run again:\n{}",
        b.progress.summary()
    );
    let out = run_json(
        engine,
        &second,
        &["python3", "-m", "src.operator", "--once"],
    );
    assert_eq!(out["dashboard_title"], title.as_str(), "{out}");
    eprintln!(
        "examples: autoscaler code-only rebuild took {:.1}s",
        rebuild.as_secs_f64()
    );
    for t in [first, second] {
        engine.remove_image(&t);
    }
}

// ------------------------------------------------------------------------ clm (seed 004) --

/// The conda environment of clm's notebook-processor (`services/notebook-processor/packages.yaml`:
/// `python=3.12`, `pip`, `ipykernel>=6.29`) from a local channel, since no conda channel is
/// reachable here: test builds of those packages. `python` and `pip` are empty (the micromamba
/// stand-in image already has a Python with pip); `ipykernel` carries what the processor reads
/// from the real one, `share/jupyter/kernels/python3/kernel.json`, its interpreter written with
/// the prefix placeholder that the installer replaces. Build strings are new on every run, so the
/// channel's download counts are this build's.
struct ClmConda {
    channel: CondaChannel,
    ipykernel: CondaPackage,
}

const IPYKERNEL_KERNEL_JSON: &str = r#"{
 "argv": ["/opt/anaconda1anaconda2anaconda3/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "Python 3 (ipykernel)",
 "language": "python",
 "metadata": {"debugger": true}
}
"#;

impl ClmConda {
    fn serve(engine: &Engine) -> ClmConda {
        ensure_micromamba_image(engine);
        let python = CondaPackage::noarch("python", "3.12.7").unique_build();
        let pip = CondaPackage::noarch("pip", "24.2")
            .unique_build()
            .depends("python >=3.8");
        let ipykernel = CondaPackage::noarch("ipykernel", "6.29.5")
            .unique_build()
            .depends("python >=3.8")
            .file(
                "share/jupyter/kernels/python3/kernel.json",
                IPYKERNEL_KERNEL_JSON,
            );
        let channel = CondaChannel::serve(&[python, pip, ipykernel.clone()]);
        ClmConda { channel, ipykernel }
    }

    /// What points the example at this channel and the micromamba stand-in: the args a user with
    /// a conda mirror and a micromamba image of their own would pass.
    fn build_args(&self) -> Vec<String> {
        vec![
            "--build-arg".into(),
            format!("MICROMAMBA_IMAGE={MICROMAMBA_IMAGE}"),
            "--build-arg".into(),
            format!("CONDA_CHANNEL={}", self.channel.url()),
        ]
    }
}

/// The micromamba stand-in (py-rattler) aborts when two installs run at once on this engine, so
/// the conda builds of this file take turns (see tests/conda.rs).
static CONDA_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn clm_notebook_processor_is_a_conda_environment_built_from_the_repository_root() {
    let Some(engine) =
        engine("clm_notebook_processor_is_a_conda_environment_built_from_the_repository_root")
    else {
        return;
    };
    let conda = ClmConda::serve(engine);
    let args = conda.build_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (tag, b) = {
        let _turn = CONDA_TURN.lock().unwrap_or_else(|e| e.into_inner());
        build(engine, "clm", &example("clm"), "notebook-processor", &args)
    };
    b.assert_vertex(
        "[service notebook-processor 3/6] micromamba install -f services/notebook-processor/packages.yaml",
    );
    b.assert_vertex(
        "[service notebook-processor 4/6] pip install -r clm-common/requirements.txt -r services/notebook-processor/",
    );
    let install = b.vertex("micromamba install").unwrap();
    assert!(
        install
            .logs
            .contains(&format!("downloaded: {}", conda.ipykernel.dist())),
        "ipykernel comes from CONDA_CHANNEL:\n{}",
        install.logs
    );
    assert_eq!(
        conda.channel.downloads(&conda.ipykernel.filename()),
        1,
        "{}",
        install.logs
    );

    // The worker converts the slides and gives both notebooks the environment's kernel.
    let out = run_json(
        engine,
        &tag,
        &[
            "python3",
            "-m",
            "notebook_processor",
            "--once",
            "notebook_processor/samples/slides_010_functions.py",
        ],
    );
    assert_eq!(out["ok"], true, "{out}");
    let d = &out["detail"];
    assert_eq!(d["cells"], 5, "{out}");
    assert_eq!(d["code_along_cleared"], 2, "{out}");
    assert_eq!(d["notes_dropped"], 1, "{out}");
    assert_eq!(d["nbformat"], "5.11.1");
    assert_eq!(d["kernel"]["display_name"], "Python 3 (ipykernel)", "{out}");
    assert_eq!(
        d["kernel"]["python"], "/opt/conda/bin/python",
        "the prefix placeholder in kernel.json became the environment's prefix: {out}"
    );
    let along = run_json(
        engine,
        &tag,
        &[
            "sh",
            "-c",
            "python3 -m notebook_processor --once notebook_processor/samples/slides_010_functions.py /tmp/s.ipynb >/dev/null && cat /tmp/s.code-along.ipynb",
        ],
    );
    assert_eq!(
        along["metadata"]["kernelspec"],
        serde_json::json!({"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"})
    );

    // The packages are recorded in the environment, the package cache (a cache mount) stayed
    // out of the image, clm-common comes from the shared directory, and .dockerignore kept
    // tests/ out of the copy of the service directory.
    let files = engine.docker_run(
        &tag,
        &[
            "sh",
            "-c",
            "id -un; ls /opt/conda/conda-meta; echo \"pkgs entries: $(ls -A /opt/conda/pkgs | wc -l)\"; \
             find /app /opt/clm-common -name '*.py' | sort",
        ],
    );
    assert!(files.starts_with("clm\n"), "{files}");
    for p in ["python-3.12.7-", "pip-24.2-", "ipykernel-6.29.5-"] {
        assert!(files.contains(p), "{p}*.json in conda-meta: {files}");
    }
    assert!(files.contains("pkgs entries: 0"), "{files}");
    assert!(
        files.contains("/opt/clm-common/clm_common/worker.py"),
        "{files}"
    );
    assert!(
        files.contains("/app/notebook_processor/process.py"),
        "{files}"
    );
    assert!(
        !files.contains("tests/"),
        ".dockerignore excludes **/tests: {files}"
    );
    let env = env_of(engine, &tag);
    assert!(
        env.contains(&"PYTHONPATH=/opt/clm-common".to_string()),
        "{env:?}"
    );
    assert!(
        env.iter().any(|e| e.starts_with("PATH=/opt/conda/bin:")),
        "{env:?}"
    );
    let c = &engine.image_inspect(&tag)["Config"];
    assert_eq!(c["User"], "clm");
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "0.3.0");
    assert_eq!(
        c["Labels"]["org.opencontainers.image.title"],
        "clm-notebook-processor"
    );
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["python3", "-m", "notebook_processor"])
    );
    engine.remove_image(&tag);
}

/// The plantuml converter installs graphviz with its recommends (`apt-recommends = true`), as
/// the seed's `apt-get install -y graphviz` did: fonts-liberation2 comes with it, and dot draws
/// the diagram's labels with it.
#[test]
fn clm_plantuml_converter_installs_graphviz_with_its_recommends() {
    let Some(engine) = engine("clm_plantuml_converter_installs_graphviz_with_its_recommends")
    else {
        return;
    };
    let (tag, b) = build(engine, "clm", &example("clm"), "plantuml-converter", &[]);
    let apt = b.vertex("apt-get install graphviz").expect("the apt step");
    let recommended = engine.docker_run(
        &tag,
        &[
            "sh",
            "-c",
            "dpkg-query -W -f '${Status} ${Package}\\n' graphviz fonts-liberation2; ls /usr/share/fonts/truetype/liberation2",
        ],
    );
    for p in [
        "install ok installed graphviz",
        "install ok installed fonts-liberation2",
    ] {
        assert!(
            recommended.contains(p),
            "{p}: {recommended}\napt step:\n{}",
            apt.logs
        );
    }
    assert!(
        recommended.contains("LiberationSans-Regular.ttf"),
        "the recommended fonts are in the image: {recommended}"
    );
    let out = run_json(
        engine,
        &tag,
        &[
            "python3",
            "-m",
            "plantuml_converter",
            "--once",
            "plantuml_converter/samples/pipeline.puml",
        ],
    );
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["detail"]["svg_has_nodes"], true, "{out}");
    engine.remove_image(&tag);
}

// --------------------------------------------------------------- the full integration run --

/// Every target of a stack in its default variant, as the frontend lists them (the `targets`
/// subrequest: `--call targets`, or buildx 0.13's `--print targets`): services first, then
/// layers. The `NAME@VARIANT` rows are left out: the other variants of an example need what CI
/// can't reach (clm's `full`: a Launchpad PPA), so `llb-gen check` and the snapshots cover them.
fn targets(engine: &Engine, dir: &Path) -> Vec<String> {
    let stack = s(&dir.join("stack.toml"));
    let mut cmd = engine.subrequest("targets");
    cmd.args(["-f", &stack, &s(dir)]);
    run(cmd)
        .stdout
        .lines()
        .skip(1) // TARGET  DESCRIPTION
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|t| !t.contains('@'))
        .collect()
}

/// A command that exercises a target and a text its output must contain.
fn smoke(example: &str, target: &str) -> (Vec<&'static str>, &'static str) {
    let (cmd, expect): (&[&'static str], &'static str) = match (example, target) {
        ("fks", "api") => (
            &["python3", "-m", "apps.api", "--once"],
            "\"ta_lite\": \"0.4.0\"",
        ),
        ("fks", "ai") => (&[], "\"sma_matches_numpy\": true"),
        ("fks", "training") => (&[], "\"weights_roundtrip\": true"),
        ("fks", "web") => (
            &["python3", "-m", "apps.web", "--once"],
            "\"asset_linked\": true, \"title\": \"FKS dashboard\"",
        ),
        ("fks", "ta-lite") => (
            &["sh", "-c", "ls /usr/local/lib /usr/local/include"],
            "libta_lite.so.0.4.0",
        ),
        ("fks", "web-build") => (&["sh", "-c", "ls /app/apps/web/dist"], "manifest.json"),
        ("tax-agent", "svc-ocr") => (
            &["python", "-m", "apps.svc_ocr", "--once"],
            "P60 End of Year Certificate",
        ),
        ("tax-agent", "svc-rag-indexer") => (
            &["python", "-m", "apps.svc_rag_indexer", "--once"],
            "\"chunks\": 9",
        ),
        ("tax-agent", "svc-rag-retriever") => (
            &["python", "-m", "apps.svc_rag_retriever", "--once"],
            "\"corrected\": \"personal allowance\"",
        ),
        ("tax-agent", "svc-ingestion") => (
            &["python", "-m", "apps.svc_ingestion", "--once"],
            "\"roundtrip\": true",
        ),
        ("tax-agent", "svc-extract") => (
            &["python", "-m", "apps.svc_extract", "--once"],
            "\"utrs\": [{\"value\": \"1955839661\", \"valid\": true}]",
        ),
        ("tax-agent", "base-runtime" | "base-ml") => (
            &[
                "python3",
                "-c",
                "import fastapi, uvicorn; print('fastapi', fastapi.__version__)",
            ],
            "fastapi 0.165.0",
        ),
        ("autoscaler", "autoscaler") => (
            &["python3", "-m", "src.operator", "--once"],
            "\"action\": \"scale-up\"",
        ),
        ("autoscaler", "base") => (
            &[
                "python3",
                "-c",
                "import kubernetes, flask; print('k8s', kubernetes.__version__)",
            ],
            "k8s 37.0.2",
        ),
        ("clm", "drawio-converter") => (
            &[
                "python3",
                "-m",
                "drawio_converter",
                "--once",
                "drawio_converter/samples/architecture.drawio",
            ],
            "\"png_size\": [440, 200]",
        ),
        ("clm", "plantuml-converter") => (
            &[
                "python3",
                "-m",
                "plantuml_converter",
                "--once",
                "plantuml_converter/samples/pipeline.puml",
            ],
            "\"svg_has_nodes\": true",
        ),
        ("clm", "notebook-processor") => (
            &[
                "python3",
                "-m",
                "notebook_processor",
                "--once",
                "notebook_processor/samples/slides_010_functions.py",
            ],
            "\"python\": \"/opt/conda/bin/python\"",
        ),
        ("multi-service", "api") => (
            &["python3", "-m", "apps.api", "--once"],
            "hello from libs/common",
        ),
        ("multi-service", "worker") => (&[], "\"jq\": true"),
        ("multi-service", "ingest") => (&[], "/opt/venv"),
        // Any other layer (or a target added later): it runs Python.
        _ => (&["python3", "-c", "print('smoke ok')"], "smoke ok"),
    };
    (cmd.to_vec(), expect)
}

#[test]
fn every_example_target_builds() {
    if std::env::var("LAYERSTACK_FULL").as_deref() != Ok("1") {
        eprintln!(
            "\n*** SKIPPED: every_example_target_builds: the full integration run builds every target of \
             every example; set LAYERSTACK_FULL=1 to run it ***\n"
        );
        return;
    }
    let Some(engine) = engine("every_example_target_builds") else {
        return;
    };
    let mut timings = vec![];
    for name in ["fks", "tax-agent", "autoscaler", "clm", "multi-service"] {
        let dir = example(name);
        let all = targets(engine, &dir);
        assert!(
            !all.is_empty(),
            "{name}: the targets subrequest listed nothing"
        );
        for target in all {
            // clm's notebook-processor needs a conda channel and a micromamba image: the local
            // ones, as in its own test.
            let conda =
                (name == "clm" && target == "notebook-processor").then(|| ClmConda::serve(engine));
            let args = conda.as_ref().map(ClmConda::build_args).unwrap_or_default();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let t0 = Instant::now();
            let (tag, _) = {
                let _turn = conda
                    .as_ref()
                    .map(|_| CONDA_TURN.lock().unwrap_or_else(|e| e.into_inner()));
                build(engine, name, &dir, &target, &args)
            };
            let secs = t0.elapsed().as_secs_f64();
            let (cmd, expect) = smoke(name, &target);
            let out = engine.docker_run(&tag, &cmd);
            assert!(
                out.contains(expect),
                "{name} --target {target}: {cmd:?} printed no {expect:?}:\n{out}"
            );
            engine.remove_image(&tag);
            timings.push(format!("{name:>14} {target:<20} {secs:6.1}s"));
        }
    }
    eprintln!(
        "examples: every target built and ran:\n{}",
        timings.join("\n")
    );
}
