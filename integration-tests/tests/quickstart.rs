//! End to end through `# syntax=`: the quick-start stack and the multi-service example built by
//! `docker buildx build` with the layerstack frontend image, then inspected and run.

use integration_tests::pyindex::{PackageIndex, Wheel};
use integration_tests::{Context, Engine, frontend_image, repo_root};

fn root() -> String {
    repo_root().to_string_lossy().into_owned()
}

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

#[test]
fn quickstart_builds_inherits_config_and_runs() {
    let Some(engine) = engine("quickstart_builds_inherits_config_and_runs") else {
        return;
    };
    let tag = engine.unique_tag("quickstart-api");
    let stack = format!("{}/stack.toml", root());
    let build = engine.buildx_build(&[
        "--network=host",
        "-f",
        &stack,
        "--target",
        "api",
        "-t",
        &tag,
        &root(),
    ]);
    // Vertex names follow the grammar `[layer runtime 1/4] apt-get install curl`.
    for name in [
        "[layer runtime 1/4] apt-get install curl",
        "[layer runtime 4/4] pip install -r quickstart/requirements.txt",
        "[service api 1/1] copy quickstart/app",
    ] {
        assert!(
            build.vertex(name).is_some(),
            "no vertex {name:?}:\n{}",
            build.progress.summary()
        );
    }

    let out = engine.docker_run(&tag, &["python3", "-m", "app", "--once"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("the app prints JSON");
    assert_eq!(v["service"], "layerstack-quickstart-api");
    assert_eq!(v["user"], "1000", "runs as the non-root user");

    let inspect = engine.image_inspect(&tag);
    let c = &inspect["Config"];
    assert_eq!(c["User"], "appuser");
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["Cmd"], serde_json::json!(["python3", "-m", "app"]));
    assert_eq!(c["ExposedPorts"], serde_json::json!({"8000/tcp": {}}));
    assert_eq!(
        c["Labels"]["org.opencontainers.image.title"],
        "layerstack-quickstart-api"
    );
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!([
            "CMD-SHELL",
            "curl -fsS http://localhost:8000/health || exit 1"
        ])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 10_000_000_000u64);
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    // Inherited from the base image's config (like FROM), plus the layer's own env.
    assert!(env.contains(&"LANG=C.UTF-8"), "{env:?}");
    assert!(
        env.iter()
            .any(|e| e.starts_with("PATH=/usr/local/sbin:/usr/local/bin")),
        "{env:?}"
    );
    assert!(env.contains(&"PYTHONUNBUFFERED=1"), "{env:?}");
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");

    // Files are in place and owned by the user; the apt cache stayed out of the image.
    let ls = engine.docker_run(&tag, &["sh", "-c", "stat -c '%U %n' /app /app/app/__main__.py; ls /var/cache/apt/archives | grep -c '\\.deb$' || true; command -v curl"]);
    assert!(ls.contains("appuser /app\n"), "{ls}");
    assert!(ls.contains("appuser /app/app/__main__.py"), "{ls}");
    assert!(
        ls.contains("\n0\n"),
        "no .deb files may be left in the image:\n{ls}"
    );
    assert!(ls.contains("/usr/bin/curl"), "{ls}");
    engine.remove_image(&tag);
}

#[test]
fn multi_service_example_every_target_builds_and_runs() {
    let Some(engine) = engine("multi_service_example_every_target_builds_and_runs") else {
        return;
    };
    let dir = repo_root().join("examples/multi-service");
    let dir = dir.to_string_lossy().into_owned();
    let stack = format!("{dir}/stack.toml");
    let mut tags = vec![];
    for target in ["system", "runtime", "api", "worker", "ingest"] {
        let tag = engine.unique_tag(&format!("ms-{target}"));
        engine.buildx_build(&[
            "--network=host",
            "-f",
            &stack,
            "--target",
            target,
            "--build-arg",
            "APP_VERSION=1.2.3",
            "-t",
            &tag,
            &dir,
        ]);
        tags.push((target, tag));
    }
    let tag = |t: &str| tags.iter().find(|(n, _)| *n == t).unwrap().1.clone();

    let api: serde_json::Value = serde_json::from_str(
        engine
            .docker_run(&tag("api"), &["python3", "-m", "apps.api", "--once"])
            .trim(),
    )
    .unwrap();
    assert_eq!(api["greeting"], "hello from libs/common");
    assert_eq!(api["six"], "1.16.0");

    // The worker's entrypoint takes the cmd as arguments; jq came from its own apt list.
    let worker: serde_json::Value =
        serde_json::from_str(engine.docker_run(&tag("worker"), &[]).trim()).unwrap();
    assert_eq!(worker["attrs"], "24.2.0");
    assert_eq!(worker["jq"], true);

    // The two-stage service runs from the venv copied out of its builder.
    let ingest: serde_json::Value =
        serde_json::from_str(engine.docker_run(&tag("ingest"), &[]).trim()).unwrap();
    assert_eq!(ingest["prefix"], "/opt/venv");
    assert_eq!(ingest["idna"], "3.10");
    let inspect = engine.image_inspect(&tag("ingest"));
    assert_eq!(inspect["Config"]["WorkingDir"], "/srv");
    assert_eq!(inspect["Config"]["User"], "appuser");
    assert_eq!(
        inspect["Config"]["Labels"]["org.opencontainers.image.version"],
        "1.2.3"
    );
    let env = inspect["Config"]["Env"].to_string();
    assert!(env.contains("PATH=/opt/venv/bin:"), "{env}");
    // No compiler or pip cache reached the runtime image; the base's site-packages stay clean.
    let clean = engine.docker_run(
        &tag("ingest"),
        &[
            "sh",
            "-c",
            "/usr/bin/python3 -c 'import idna' 2>&1 | tail -1",
        ],
    );
    assert!(
        clean.contains("No module named") || clean.contains("ModuleNotFoundError"),
        "system python must not see the venv's packages:\n{clean}"
    );

    // The api image is built on the runtime layer: the same base layers.
    let layers = |t: &str| -> Vec<String> {
        engine.image_inspect(&tag(t))["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    let (runtime, api, worker) = (layers("runtime"), layers("api"), layers("worker"));
    assert!(
        api.starts_with(&runtime),
        "api must start with the runtime layer's layers"
    );
    assert!(
        worker.starts_with(&runtime),
        "worker must start with the runtime layer's layers"
    );
    for (_, t) in &tags {
        engine.remove_image(t);
    }
}

#[test]
fn dockerignore_is_respected() {
    let Some(engine) = engine("dockerignore_is_respected") else {
        return;
    };
    let ctx = Context::new()
        .file(
            "stack.toml",
            &format!(
                "# syntax={}\n[services.app]\nfrom = \"debian:bookworm-slim\"\nworkdir = \"/srv\"\ncopy = [\".\"]\ncmd = [\"sh\", \"-c\", \"find /srv -type f | sort\"]\n",
                frontend_image()
            ),
        )
        .file(".dockerignore", "secret.txt\n**/*.log\n!keep.log\n")
        .file("main.py", "print('hi')\n")
        .file("secret.txt", "token\n")
        .file("logs/debug.log", "noise\n")
        .file("keep.log", "kept\n");
    let tag = engine.unique_tag("dockerignore");
    engine.buildx_build(&["-f", &ctx.join("stack.toml"), "-t", &tag, ctx.path_str()]);
    let files = engine.docker_run(&tag, &[]);
    assert!(files.contains("/srv/main.py"), "{files}");
    assert!(files.contains("/srv/keep.log"), "{files}");
    assert!(!files.contains("secret.txt"), "{files}");
    assert!(!files.contains("debug.log"), "{files}");
    engine.remove_image(&tag);
}

fn cache_stack(index: &str) -> String {
    format!(
        "# syntax={}\n\
         [layers.deps]\nfrom = \"python:3.12-slim\"\napt = [\"jq\"]\nrequirements = [\"requirements.txt\"]\nindex-url = \"{index}\"\ninstall-env = {{ PIP_TRUSTED_HOST = \"127.0.0.1\" }}\n\
         [services.app]\nfrom = \"deps\"\nworkdir = \"/app\"\ncopy = [\"app.py\"]\ncmd = [\"python3\", \"app.py\"]\n",
        frontend_image()
    )
}

/// The cache mounts work: a code-only change re-runs only the copy step, and after adding a
/// requirement pip takes the wheels it had from the cache mount instead of downloading them.
/// The wheels come from a local index that sends PyPI's cache headers (the proxy in front of
/// PyPI here strips them, which would stop pip's HTTP cache from storing anything); pip caches
/// plain-HTTP responses only from trusted hosts, hence `PIP_TRUSTED_HOST` in `install-env`.
#[test]
fn cache_mounts_and_code_only_changes() {
    let Some(engine) = engine("cache_mounts_and_code_only_changes") else {
        return;
    };
    let a = Wheel::pure("lsdemo-a", "1.0");
    let b = Wheel::pure("lsdemo-b", "2.0");
    let index = PackageIndex::serve(&[a.clone(), b.clone()]);
    let ctx = Context::new()
        .file("stack.toml", &cache_stack(&index.url()))
        .file("requirements.txt", "lsdemo-a==1.0\n")
        .file(
            "app.py",
            "import lsdemo_a\nprint('v1', lsdemo_a.__version__)\n",
        );
    let tag = engine.unique_tag("cache");
    let args = |tag: &str| -> Vec<String> {
        vec![
            "--network=host".into(),
            "-f".into(),
            ctx.join("stack.toml"),
            "-t".into(),
            tag.into(),
            ctx.path_str().into(),
        ]
    };
    let build = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        engine.buildx_build(&a)
    };
    build(args(&tag));
    assert_eq!(engine.docker_run(&tag, &[]).trim(), "v1 1.0");
    assert_eq!(index.downloads(&a.filename()), 1);

    // A code-only change re-runs only the copy: every install vertex is cached.
    std::fs::write(
        ctx.path().join("app.py"),
        "import lsdemo_a\nprint('v2', lsdemo_a.__version__)\n",
    )
    .unwrap();
    let code = build(args(&tag));
    for step in ["apt-get install jq", "pip install -r requirements.txt"] {
        code.progress.assert_cached(step, |v| v.name.contains(step));
    }
    let copy = code.vertex("copy app.py").expect("the copy step runs");
    assert!(
        !copy.cached,
        "the changed file must be copied again: {copy:?}"
    );
    assert_eq!(engine.docker_run(&tag, &[]).trim(), "v2 1.0");

    // One more requirement: pip runs again, but the wheel it had comes from the cache mount.
    std::fs::write(
        ctx.path().join("requirements.txt"),
        "lsdemo-a==1.0\nlsdemo-b==2.0\n",
    )
    .unwrap();
    let more = build(args(&tag));
    let pip = more
        .vertex("pip install -r requirements.txt")
        .expect("pip runs again");
    assert!(!pip.cached, "{pip:?}");
    assert!(
        pip.logs.contains("Using cached") && pip.logs.contains("lsdemo_a-1.0-py3-none-any.whl"),
        "lsdemo-a must come from the pip cache mount:\n{}",
        pip.logs
    );
    assert_eq!(
        index.downloads(&a.filename()),
        1,
        "lsdemo-a must not be downloaded again"
    );
    assert_eq!(index.downloads(&b.filename()), 1);
    // apt ran before pip in the same layer and is unaffected.
    more.progress.assert_cached("apt-get install jq", |v| {
        v.name.contains("apt-get install jq")
    });
    engine.remove_image(&tag);
}
