//! The `llb-gen` CLI end to end: `plan`, `graph`, `hash` and `bake` on
//! `examples/multi-service` (and on copies of it in temp dirs, to change files).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn example() -> PathBuf {
    repo().join("examples/multi-service")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llb-gen"))
        .args(args)
        .output()
        .expect("run llb-gen")
}

/// Run and expect success; stdout.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "llb-gen {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "llb-gen-cli-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// A copy of `examples/multi-service`.
    fn example() -> TempDir {
        let t = TempDir::new();
        copy_dir(&example(), &t.0);
        t
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.path(rel).to_string_lossy().into_owned()
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

fn stack() -> String {
    example().join("stack.toml").to_string_lossy().into_owned()
}

fn hash(stack: &str, layer: &str) -> String {
    let h = ok(&["hash", stack, "--layer", layer]);
    h.trim().to_string()
}

#[test]
fn plan_prints_the_layer_tree() {
    let out = ok(&["plan", &stack()]);
    assert!(
        out.starts_with("stack multi-service: 2 layers, 3 services (linux/amd64)\n"),
        "{out}"
    );
    for line in [
        "python:3.12-slim  (docker.io/library/python:3.12-slim)\n",
        "├── layer system — OS packages and the non-root user shared by every service\n",
        "│   └── layer runtime — Python dependencies of all services (libs/requirements-base.txt)\n",
        "│       │ 1. pip install -r libs/requirements-base.txt\n",
        "│       ├── service api — HTTP API\n",
        "│       │     1. pip install humanize==4.11.0\n",
        "└── service ingest — ",
        "  system   used by api, worker (via runtime)\n",
        "  runtime  used by api, worker\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    // A target shows only what it builds; build args are interpolated.
    let out = ok(&[
        "plan",
        &stack(),
        "--target",
        "api",
        "--build-arg",
        "APP_VERSION=9.9",
    ]);
    assert!(
        out.starts_with("target api (service) on linux/amd64: 3 images\n"),
        "{out}"
    );
    assert!(
        out.contains("org.opencontainers.image.version=9.9"),
        "{out}"
    );
    assert!(!out.contains("service worker"), "{out}");
    // Errors are the usual diagnostics.
    let bad = run(&["plan", &stack(), "--target", "apii"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("did you mean `api`?"));
}

#[test]
fn graph_in_dot_and_mermaid_is_deterministic() {
    let dot = ok(&["graph", &stack()]);
    assert_eq!(dot, ok(&["graph", &stack(), "--format", "dot"]));
    assert!(dot.contains("digraph \"multi-service\" {"), "{dot}");
    assert!(dot.contains("\"image_1\" -> \"layer_system\";"), "{dot}");
    assert!(
        dot.contains("\"layer_runtime\" -> \"service_worker\";"),
        "{dot}"
    );
    assert!(
        dot.contains("\"service_api\" [label=\"api\\nservice\", shape=component"),
        "{dot}"
    );
    let m = ok(&["graph", &stack(), "--format", "mermaid"]);
    assert!(m.starts_with("flowchart TD\n"), "{m}");
    assert!(m.contains("  layer_runtime --> service_api\n"), "{m}");
    assert!(m.contains("  image_1 --> service_ingest\n"), "{m}");
    assert_eq!(m, ok(&["graph", &stack(), "--format", "mermaid"]));
    // The committed docs are what the CLI prints today.
    let doc = std::fs::read_to_string(repo().join("docs/graph-example.md")).unwrap();
    assert!(
        doc.contains(&m),
        "docs/graph-example.md is stale: regenerate it with `llb-gen graph examples/multi-service/stack.toml --format mermaid`"
    );
}

#[test]
fn hash_is_short_full_or_json() {
    let short = hash(&stack(), "runtime");
    assert_eq!(short.len(), 12);
    assert!(short.chars().all(|c| c.is_ascii_hexdigit()), "{short}");
    let full = ok(&["hash", &stack(), "--layer", "runtime", "--full"]);
    assert_eq!(full.trim().len(), 64);
    assert!(full.starts_with(&short));
    let j: serde_json::Value =
        serde_json::from_str(&ok(&["hash", &stack(), "--layer", "runtime", "--json"])).unwrap();
    assert_eq!(j["layer"], "runtime");
    assert_eq!(j["hash"], short.as_str());
    assert_eq!(j["digest"], format!("sha256:{}", full.trim()));
    let inputs = j["inputs"].as_array().unwrap();
    let paths: Vec<&str> = inputs
        .iter()
        .filter(|i| i["type"] == "file")
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["libs/common/__init__.py", "libs/requirements-base.txt"]
    );
    assert!(
        inputs
            .iter()
            .any(|i| i["type"] == "layer" && i["name"] == "system")
    );
    // Unknown names are an error with a suggestion.
    let bad = run(&["hash", &stack(), "--layer", "runtim"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("did you mean `runtime`?"));
}

#[test]
fn hash_follows_exactly_the_files_a_layer_reads() {
    let t = TempDir::example();
    let st = t.s("stack.toml");
    let names = ["system", "runtime", "api", "worker", "ingest"];
    let before: Vec<String> = names.iter().map(|n| hash(&st, n)).collect();
    // Where the context lives does not matter; `--context` defaults to the stack's directory.
    assert_eq!(before[1], hash(&stack(), "runtime"));
    assert_eq!(
        ok(&["hash", &st, "--layer", "api", "--context", &t.s("")]).trim(),
        before[2]
    );

    // Service code: only that service changes.
    t.write("apps/api/__main__.py", "print('changed')\n");
    t.write("apps/api/__pycache__/junk.pyc", "ignored by .dockerignore");
    t.write("notes.txt", "read by nothing");
    let after: Vec<String> = names.iter().map(|n| hash(&st, n)).collect();
    assert_ne!(before[2], after[2], "api");
    for i in [0, 1, 3, 4] {
        assert_eq!(before[i], after[i], "{}", names[i]);
    }

    // A file only .dockerignore mentions: nothing changes.
    t.write("libs/common/__pycache__/x.pyc", "x");
    let again: Vec<String> = names.iter().map(|n| hash(&st, n)).collect();
    assert_eq!(after, again);

    // The requirements of the runtime layer: it and everything on it change, system does not.
    let req = std::fs::read_to_string(t.path("libs/requirements-base.txt")).unwrap();
    t.write(
        "libs/requirements-base.txt",
        &format!("{req}attrs==24.2.0\n"),
    );
    let bumped: Vec<String> = names.iter().map(|n| hash(&st, n)).collect();
    assert_eq!(after[0], bumped[0], "system");
    for i in 1..5 {
        assert_ne!(after[i], bumped[i], "{}", names[i]);
    }

    // A missing requirements file is an error that names it.
    std::fs::remove_file(t.path("apps/worker/requirements.txt")).unwrap();
    let bad = run(&["hash", &st, "--layer", "worker"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("apps/worker/requirements.txt"), "{err}");
}

#[test]
fn bake_file_for_the_example() {
    let out = ok(&["bake", &stack()]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        j["group"]["default"]["targets"],
        serde_json::json!(["api", "worker", "ingest"])
    );
    assert_eq!(
        j["group"]["bases"]["targets"],
        serde_json::json!(["system", "runtime"])
    );
    let api = &j["target"]["api"];
    assert_eq!(api["context"], example().to_string_lossy().as_ref());
    assert_eq!(api["dockerfile"], "stack.toml");
    assert_eq!(api["target"], "api");
    assert_eq!(api["args"]["PYTHON_VERSION"], "3.12");
    assert!(api.get("tags").is_none(), "the example has no tag template");
    assert!(api.get("platforms").is_none());
    assert_eq!(out, ok(&["bake", &stack()]), "deterministic");
}

/// `--network host`: set on every target, with the warning that buildx before 0.17.0 drops it
/// and the `--format compose` command that works there; the compose file has the same targets.
#[test]
fn bake_network_warns_and_compose_carries_it() {
    let out = run(&["bake", &stack(), "--network", "host"]);
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["target"]["api"]["network"], "host");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("warning: buildx before 0.17.0 ignores `network` in a bake file")
            && err.contains(&format!(
                "llb-gen bake {} --network host --format compose > docker-bake.network.yml",
                stack()
            )),
        "{err}"
    );
    let compose = run(&["bake", &stack(), "--network=host", "--format=compose"]);
    assert!(compose.status.success());
    assert!(compose.stderr.is_empty(), "no warning for the compose file");
    let c: serde_json::Value = serde_json::from_slice(&compose.stdout).unwrap();
    let services: Vec<&String> = c["services"].as_object().unwrap().keys().collect();
    let mut targets: Vec<&String> = j["target"].as_object().unwrap().keys().collect();
    targets.sort();
    assert_eq!(services, targets);
    let api = &c["services"]["api"]["build"];
    assert_eq!(api["network"], "host");
    assert_eq!(api["target"], "api");
    assert_eq!(api["context"], j["target"]["api"]["context"]);
    assert!(
        run(&["bake", &stack()]).stderr.is_empty(),
        "no --network, no warning"
    );
    let bad = run(&["bake", &stack(), "--network", "bridge"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--network `bridge`: expected host or none")
    );
}

#[test]
fn bake_tags_from_the_template_with_content_hashes() {
    let t = TempDir::example();
    let text = std::fs::read_to_string(t.path("stack.toml")).unwrap();
    let text = text
        .replace(
            "default = \"api\"\n",
            "default = \"api\"\ntags = [\"${REGISTRY}/${OWNER}/${NAME}:${APP_VERSION}\", \"${REGISTRY}/${OWNER}/${NAME}:${HASH}\"]\n",
        )
        .replace(
            "[args]\n",
            "[args]\nREGISTRY = \"registry.example.com\"\nOWNER = \"team\"\n",
        );
    t.write("stack.toml", &text);
    let st = t.s("stack.toml");
    // Checked like any stack (the key is known).
    ok(&["check", &st]);
    // Run from a parent directory with a relative context: bake paths stay relative.
    let parent = t.0.parent().unwrap();
    let dir = t.0.file_name().unwrap().to_string_lossy().into_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_llb-gen"))
        .current_dir(parent)
        .args([
            "bake",
            &format!("{dir}/stack.toml"),
            "--build-arg",
            "APP_VERSION=v1.0.1",
            "--platform",
            "linux/amd64,linux/arm64",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for name in ["system", "runtime", "api", "worker", "ingest"] {
        let tg = &j["target"][name];
        assert_eq!(tg["context"], dir.as_str());
        assert_eq!(tg["dockerfile"], "stack.toml");
        assert_eq!(
            tg["platforms"],
            serde_json::json!(["linux/amd64", "linux/arm64"])
        );
        let h = ok(&[
            "hash",
            &st,
            "--layer",
            name,
            "--platform",
            "linux/amd64,linux/arm64",
            "--build-arg",
            "APP_VERSION=v1.0.1",
        ]);
        assert_eq!(
            tg["tags"],
            serde_json::json!([
                format!("registry.example.com/team/{name}:v1.0.1"),
                format!("registry.example.com/team/{name}:{}", h.trim()),
            ])
        );
    }
    // An undefined arg in the template is an error pointing at it.
    t.write(
        "stack.toml",
        &text.replace("${OWNER}/${NAME}:${HASH}", "${OWNR}/${NAME}:${HASH}"),
    );
    let bad = run(&["bake", &st]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("`${OWNR}` is not defined"), "{err}");
    assert!(err.contains("did you mean `${OWNER}`?"), "{err}");
}

#[test]
fn check_and_llb_still_work() {
    let out = ok(&["check", &stack()]);
    assert!(out.contains(": ok (5 targets"), "{out}");
    let text = ok(&["llb", &stack(), "--target", "api", "--format", "text"]);
    assert!(!text.is_empty());
}

/// A stack whose requirements file includes others (`-r`, `-c`, nested, relative to the
/// including file), in a context directory apart from the stack file.
fn includes_project() -> (TempDir, TempDir) {
    let stack_dir = TempDir::new();
    let ctx = TempDir::new();
    stack_dir.write(
        "stack.toml",
        "# syntax=layerstack:dev\n[services.api]\nfrom = \"python:3.12-slim\"\nrequirements = [\"app/requirements.txt\"]\n",
    );
    ctx.write(
        "app/requirements.txt",
        "-r ../common/base.txt\n-c constraints.txt\nflask\n",
    );
    ctx.write("common/base.txt", "--requirement nested.txt\nrequests\n");
    ctx.write("common/nested.txt", "-r base.txt\nidna\n");
    ctx.write("app/constraints.txt", "flask<4\n");
    (stack_dir, ctx)
}

#[test]
fn requirement_includes_are_staged_and_read_from_the_named_context() {
    let (stack_dir, ctx) = includes_project();
    let stack = stack_dir.s("stack.toml");
    let out = ok(&["check", &stack, "--context", &ctx.s("")]);
    assert!(out.contains(": ok (1 targets"), "{out}");
    let text = ok(&["llb", &stack, "--context", &ctx.s(""), "--format", "text"]);
    // One context source and one staging vertex with the listed file and all it includes;
    // pip gets only the listed file.
    assert!(
        text.contains(
            "[\"app/constraints.txt\",\"app/requirements.txt\",\"common/base.txt\",\"common/nested.txt\"]"
        ),
        "{text}"
    );
    assert!(
        text.contains("-r /run/layerstack/requirements/app/requirements.txt"),
        "{text}"
    );
    assert!(
        !text.contains("-r /run/layerstack/requirements/common"),
        "{text}"
    );
    // The included files are part of the service's content hash.
    let h = |ctx: &TempDir| ok(&["hash", &stack, "--layer", "api", "--context", &ctx.s("")]);
    let before = h(&ctx);
    ctx.write("common/nested.txt", "-r base.txt\nidna==3.7\n");
    assert_ne!(before, h(&ctx), "a nested include changes the hash");
    // A missing include is an error at the requirements entry, naming file and line.
    std::fs::remove_file(ctx.path("app/constraints.txt")).unwrap();
    let out = run(&["check", &stack, "--context", &ctx.s("")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`-c constraints.txt` (line 2 of `app/requirements.txt`")
            && err.contains("`app/constraints.txt` is not in the build context"),
        "{err}"
    );
    assert!(err.contains("stack.toml:4"), "{err}");
    // Excluded by the context's .dockerignore: not in the context either.
    ctx.write("app/constraints.txt", "flask<4\n");
    ctx.write(".dockerignore", "app/constraints.txt\n");
    let out = run(&["llb", &stack, "--context", &ctx.s(""), "--format", "text"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Without --context the stack file's directory is the context: nothing to include.
    let out = run(&["check", &stack, "--context", &ctx.s("nope")]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn context_dockerignore_applies_to_llb() {
    let (stack_dir, ctx) = includes_project();
    ctx.write(".dockerignore", "**/*.pyc\n");
    let text = ok(&[
        "llb",
        &stack_dir.s("stack.toml"),
        "--context",
        &ctx.s(""),
        "--format",
        "text",
    ]);
    assert!(text.contains("local.excludepatterns"), "{text}");
    assert!(text.contains("**/*.pyc"), "{text}");
}

#[test]
fn apt_keys_render_sources_debs_and_recommends() {
    let t = TempDir::new();
    t.write(
        "stack.toml",
        "# syntax=layerstack:dev\n[layers.base]\nfrom = \"debian:bookworm-slim\"\napt = [\"curl\", \"./debs/tool_1.0_all.deb\"]\napt-recommends = true\napt-sources = [\n  { name = \"extra\", uris = \"https://deb.example.org/debian\", suites = \"bookworm\", components = \"main contrib\", key = \"keys/extra.asc\" },\n  { uris = \"http://deb.debian.org/debian\", suites = [\"bookworm-updates\"], components = \"main\", signed-by = \"/usr/share/keyrings/debian-archive-keyring.gpg\" },\n]\n",
    );
    t.write("debs/tool_1.0_all.deb", "x");
    t.write("keys/extra.asc", "k");
    let stack = t.s("stack.toml");
    let text = ok(&["llb", &stack, "--format", "text"]);
    for want in [
        "[layer base 1/1] apt sources extra base-2; apt-get install curl ./debs/tool_1.0_all.deb",
        "cp /run/layerstack/apt/keys/extra.asc /etc/apt/keyrings/layerstack-extra.asc",
        "'Signed-By: /etc/apt/keyrings/layerstack-extra.asc'",
        "'Components: main contrib'",
        "> /etc/apt/sources.list.d/layerstack-base-2.sources",
        "'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'",
        "apt-get install -y curl /run/layerstack/apt/debs/tool_1.0_all.deb",
        "[\"debs/tool_1.0_all.deb\",\"keys/extra.asc\"]",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
    assert!(!text.contains("--no-install-recommends"), "{text}");
    // The files are hashed: changing the .deb changes the layer's hash.
    let before = hash(&stack, "base");
    t.write("debs/tool_1.0_all.deb", "y");
    assert_ne!(before, hash(&stack, "base"));
    // Errors: not a .deb, both key and signed-by, a bad URI, no components.
    t.write(
        "stack.toml",
        "# syntax=layerstack:dev\n[layers.base]\nfrom = \"debian:bookworm-slim\"\napt = [\"./debs/tool.tar\"]\napt-sources = [{ uris = \"deb.example.org\", suites = \"x\", key = \"k.asc\", signed-by = \"/k.gpg\" }]\n",
    );
    let out = run(&["check", &stack]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "`debs/tool.tar` is not a .deb file",
        "an apt source takes `key` or `signed-by`, not both",
        "`deb.example.org` is not valid in `uris`",
        "an apt source needs `components`",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
}

/// `at` places run and copy entries; the LLB shows them in that order, numbered i/n, a run
/// after conda inside the environment, and an optional copy allowed to match nothing.
#[test]
fn llb_places_run_and_copy_entries_where_at_says() {
    let t = TempDir::new();
    t.write(
        "stack.toml",
        r#"[layers.base]
from = "mambaorg/micromamba:1.5"
apt = ["man-db"]
conda = { file = "environment.yml", env = "tools" }
pip = ["rich"]
workdir = "/app"
run = [
  { cmd = "python -c 'import rich'", at = "after-python" },
  { cmd = "mkdir -p /usr/share/man/man1", at = "before-apt" },
  "echo default",
  { cmd = "chmod +x /app/entrypoint.sh", at = "after-copy" },
  { cmd = "python --version", at = "after-conda" },
]
copy = [
  "entrypoint.sh",
  { src = "extra*.txt", optional = true },
  { src = "constraints.txt", at = "before-python" },
  { src = "conf/local.toml", optional = true },
]
"#,
    );
    let text = ok(&["llb", &t.s("stack.toml"), "--format", "text"]);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name: [layer base "))
        .filter(|l| l.as_bytes()[0].is_ascii_digit())
        .collect();
    assert_eq!(
        names,
        [
            "1/13] run mkdir -p /usr/share/man/man1",
            "2/13] apt-get install man-db",
            "3/13] workdir /app",
            "4/13] run echo default",
            "5/13] micromamba install -f environment.yml",
            "6/13] run python --version",
            "7/13] copy constraints.txt",
            "8/13] pip install rich",
            "9/13] run python -c 'import rich'",
            "10/13] copy entrypoint.sh",
            "11/13] copy extra*.txt",
            "12/13] copy conf/local.toml",
            "13/13] run chmod +x /app/entrypoint.sh",
        ],
        "{text}"
    );
    assert!(
        text.contains(r#"args: micromamba run -n tools /bin/sh -c "python --version""#),
        "{text}"
    );
    let copy_line = |src: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with("copy v") && l.contains(src))
            .unwrap_or_else(|| panic!("no copy of {src}: {text}"))
            .to_string()
    };
    assert!(
        copy_line("/extra*.txt").ends_with("wildcard allow-empty"),
        "{text}"
    );
    assert!(!copy_line("/entrypoint.sh").contains("wildcard"), "{text}");
    // The same stack without `at` and `optional` runs in the fixed order.
    t.write(
        "stack.toml",
        "[layers.base]\nfrom = \"debian:bookworm-slim\"\napt = [\"curl\"]\nrun = [{ cmd = \"echo a\", at = \"after-apt\" }, \"echo b\"]\ncopy = [{ src = \"x\", at = \"after-python\", optional = false }]\n",
    );
    let text = ok(&["llb", &t.s("stack.toml"), "--format", "text"]);
    let plain = {
        t.write(
            "stack.toml",
            "[layers.base]\nfrom = \"debian:bookworm-slim\"\napt = [\"curl\"]\nrun = [\"echo a\", \"echo b\"]\ncopy = [\"x\"]\n",
        );
        ok(&["llb", &t.s("stack.toml"), "--format", "text"])
    };
    // Only the source lines differ (the columns of the entries); the ops are the same.
    let ops = |t: &str| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("at: "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(ops(&text), ops(&plain));
}

/// A library built once in a build-only layer and copied into two services.
const ARTIFACTS: &str = r#"# syntax=layerstack:dev
[layers.base]
from = "python:3.12-slim"

[layers.talib]
description = "TA-Lib, compiled"
build-only = true
from = "base"
apt = ["gcc"]
run = ["make install PREFIX=/out"]

[services.api]
from = "base"
copy = [{ from = "talib", src = "/out/lib/libta_lib.so*", dest = "/usr/lib/" }]

[services.worker]
from = "base"
copy = [{ from = "talib", src = "/out/lib/libta_lib.so*", dest = "/usr/lib/", mode = "0644" }]
"#;

#[test]
fn artifacts_in_targets_graph_hash_and_bake() {
    let t = TempDir::new();
    t.write("stack.toml", ARTIFACTS);
    let stack = t.s("stack.toml");
    let targets = ok(&["targets", &stack]);
    assert!(
        targets.contains("talib   layer    TA-Lib, compiled (build-only)\n"),
        "{targets}"
    );
    assert!(
        targets.contains("api     service   (default)\n"),
        "{targets}"
    );
    // The copy is an edge of the graph.
    let dot = ok(&["graph", &stack]);
    assert!(
        dot.contains("\"layer_talib\" -> \"service_api\" [style=dashed, label=\"copy\""),
        "{dot}"
    );
    let mermaid = ok(&["graph", &stack, "--format", "mermaid"]);
    assert!(
        mermaid.contains("layer_talib -. copy .-> service_worker"),
        "{mermaid}"
    );
    // Bake ships the services and the base, never the build-only layer.
    let bake = ok(&["bake", &stack]);
    let json: serde_json::Value = serde_json::from_str(&bake).unwrap();
    let names: Vec<&String> = json["target"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["api", "base", "worker"], "{bake}");
    assert_eq!(
        json["group"]["default"]["targets"],
        serde_json::json!(["api", "worker"])
    );
    // Still buildable by name.
    let llb = ok(&["llb", &stack, "--target", "talib", "--format", "text"]);
    assert!(llb.contains("[layer talib 2/2] run make install"), "{llb}");
    // ${HASH} of a service follows what it copies; the base's does not.
    let (api, base) = (hash(&stack, "api"), hash(&stack, "base"));
    t.write(
        "stack.toml",
        &ARTIFACTS.replace("PREFIX=/out", "PREFIX=/out V=1"),
    );
    assert_ne!(hash(&stack, "api"), api);
    assert_ne!(hash(&stack, "worker"), api);
    assert_eq!(hash(&stack, "base"), base);
    let inputs = ok(&["hash", &stack, "--layer", "api", "--json"]);
    assert!(inputs.contains("\"copy\""), "{inputs}");
}

#[test]
fn build_context_replaces_a_base_image_for_plan_and_hash() {
    let over = "python:3.12-slim=docker-image://ghcr.io/acme/py:3.12";
    let out = ok(&["plan", &stack(), "--build-context", over]);
    assert!(out.contains("ghcr.io/acme/py:3.12"), "{out}");
    assert!(!out.contains("python:3.12-slim"), "{out}");
    // The base is part of the hash: replacing it changes every image built on it.
    let plain = ok(&["hash", &stack(), "--layer", "runtime"]);
    let replaced = ok(&[
        "hash",
        &stack(),
        "--layer",
        "runtime",
        "--build-context",
        over,
    ]);
    assert_ne!(plain, replaced);
    // A context no `from` names changes nothing.
    let unused = ok(&[
        "hash",
        &stack(),
        "--layer",
        "runtime",
        "--build-context",
        "alpine=docker-image://debian",
    ]);
    assert_eq!(plain, unused);
    for (bad, want) in [
        ("svc=/definitely/missing/dir", "is not a directory"),
        (
            "svc=https://127.0.0.1/x.tar",
            "only directories and `docker-image://REF` contexts",
        ),
        ("novalue", "expected NAME=DIR or NAME=docker-image://REF"),
        ("python=docker-image://Not A Ref", "Not A Ref"),
    ] {
        let out = run(&["plan", &stack(), "--build-context", bad]);
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("--build-context `{bad}`")), "{err}");
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn a_named_directory_context_for_check_llb_hash_and_bake() {
    let main = TempDir::new();
    let api = TempDir::new();
    main.write(
        "stack.toml",
        "# syntax=layerstack:dev\n[stack]\ntags = [\"app:${HASH}\"]\n\
         [services.app]\nfrom = \"python:3.12-slim\"\nrequirements = [\"svc-api:reqs/api.txt\"]\n\
         copy = [{ context = \"svc-api\", src = \"app/\", dest = \"/srv/\" }]\ncmd = \"true\"\n",
    );
    api.write("reqs/api.txt", "-r base.txt\n");
    api.write("reqs/base.txt", "flask\n");
    api.write("app/a.py", "x = 1\n");
    api.write("app/secret.env", "T=1\n");
    api.write(".dockerignore", "app/secret.env\n");
    let stack = main.s("stack.toml");
    let named = format!("svc-api={}", api.s(""));
    // Without the context: the located error naming the flag.
    let out = run(&["check", &stack]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the named build context `svc-api`, which this build was not given")
            && err.contains("--build-context svc-api=DIR")
            && err.contains("stack.toml:6:17"),
        "{err}"
    );
    ok(&["check", &stack, "--build-context", &named]);
    // Its own local source, its own .dockerignore, and the include read from it.
    let llb = ok(&["llb", "--format", "text", &stack, "--build-context", &named]);
    assert!(llb.contains("local://svc-api"), "{llb}");
    assert!(
        llb.contains("local.excludepatterns: [\"app/secret.env\"]"),
        "{llb}"
    );
    assert!(
        llb.contains("local.includepattern: [\"reqs/api.txt\",\"reqs/base.txt\"]"),
        "{llb}"
    );
    // The hash follows the named context's files, not the ones its .dockerignore leaves out.
    let h = |extra: &[&str]| {
        let mut args = vec!["hash", &stack, "--layer", "app", "--build-context", &named];
        args.extend_from_slice(extra);
        ok(&args)
    };
    let before = h(&[]);
    api.write("app/secret.env", "T=2\n");
    assert_eq!(before, h(&[]), "an ignored file changes nothing");
    api.write("reqs/base.txt", "flask==3.0\n");
    let after = h(&[]);
    assert_ne!(before, after, "an included file of svc-api is an input");
    let json = h(&["--json"]);
    assert!(json.contains("svc-api:reqs/base.txt"), "{json}");
    // Bake passes the context through to the target that reads it.
    let bake = ok(&["bake", &stack, "--build-context", &named]);
    let v: serde_json::Value = serde_json::from_str(&bake).unwrap();
    assert_eq!(
        v["target"]["app"]["contexts"]["svc-api"],
        api.s(""),
        "{bake}"
    );
}

/// `plan` and `graph` show each lock group with its size: the sum of the wheels' `size` in
/// the lock (`examples/lock`), `≥` when some file has none, nothing when none has; a
/// `[torch]` build from the lock is in the `torch` group.
#[test]
fn plan_and_graph_show_each_lock_group_and_its_size() {
    let stack = repo().join("examples/lock/stack.toml");
    let stack = stack.to_str().unwrap();
    let plan = ok(&["plan", stack]);
    for line in [
        "│   │ 1. lock pylock.toml: 3 packages in 3 groups\n",
        "│   │    group pkg-numpy: numpy 2.1.3 (16.0 MB)\n",
        "│   │    group small-00: jaraco-functools 4.1.0 (10.2 kB)\n",
        "│   │    group small-15: more-itertools 10.5.0 (61.0 kB)\n",
        "      2. lock pylock.toml: 3 packages in 3 groups\n",
        "         group pkg-numpy: numpy 2.1.3 (16.0 MB)\n",
    ] {
        assert!(plan.contains(line), "{line:?} in:\n{plan}");
    }
    let groups = "lock groups: pkg-numpy (16.0 MB), small-00 (10.2 kB), small-15 (61.0 kB)";
    let dot = ok(&["graph", stack]);
    assert!(
        dot.contains(&format!(
            "\"layer_deps\" [label=\"deps\\nlayer\\n{groups}\""
        )),
        "{dot}"
    );
    let m = ok(&["graph", stack, "--format", "mermaid"]);
    assert!(
        m.contains(&format!("  layer_deps[\"deps<br/>{groups}\"]\n")),
        "{m}"
    );
    assert!(
        m.contains(&format!("  service_tools[[\"tools<br/>{groups}\"]]\n")),
        "{m}"
    );

    // torch from the lock (2.1 GB), a group with one size unknown, a group with none.
    let d = TempDir::new();
    let h = |c: char| c.to_string().repeat(64);
    d.write(
        "stack.toml",
        "[torch]\npackages = { torch = \"2.5.1\" }\n\n\
         [services.ml]\nfrom = \"python:3.12-slim\"\nlock = \"pylock.toml\"\ntorch = true\n",
    );
    d.write(
        "pylock.toml",
        &format!(
            "lock-version = '1.0'\ncreated-by = 'test'\n\
             [[packages]]\nname = 'torch'\nversion = '2.5.1+cpu'\nindex = 'https://download.pytorch.org/whl/cpu'\n\
             [[packages.wheels]]\nurl = 'https://files.example/torch-2.5.1%2Bcpu-cp312-cp312-linux_x86_64.whl'\nsize = 2100000000\nhashes = {{sha256 = '{}'}}\n\
             [[packages]]\nname = 'nvidia-nccl-cu12'\nversion = '2.21.5'\n\
             [[packages.wheels]]\nurl = 'https://files.example/nvidia_nccl_cu12-2.21.5-py3-none-manylinux2014_x86_64.whl'\nhashes = {{sha256 = '{}'}}\n\
             [[packages]]\nname = 'filelock'\nversion = '3.16.1'\n\
             [[packages.wheels]]\nurl = 'https://files.example/filelock-3.16.1-py3-none-any.whl'\nhashes = {{sha256 = '{}'}}\n",
            h('a'),
            h('b'),
            h('c')
        ),
    );
    let plan = ok(&["plan", &d.s("stack.toml")]);
    assert!(
        plan.contains("   group torch: nvidia-nccl-cu12 2.21.5, torch 2.5.1+cpu (≥ 2.1 GB)\n"),
        "{plan}"
    );
    assert!(
        !plan.contains("pip install"),
        "no pip step for torch: {plan}"
    );
    let small = plan
        .lines()
        .find(|l| l.contains("group small-"))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(small.ends_with(": filelock 3.16.1"), "no size: {small}");
    let m = ok(&["graph", &d.s("stack.toml"), "--format", "mermaid"]);
    let id = small
        .trim()
        .split(':')
        .next()
        .unwrap()
        .trim_start_matches("group ");
    assert!(
        m.contains(&format!("lock groups: {id}, torch (≥ 2.1 GB)")),
        "{m}"
    );
}
