//! Snapshot tests: the readable LLB dump and the readable plan of every target of every
//! example (and the quick-start stack) must match `tests/snapshots/`; `UPDATE_SNAPSHOTS=1` rewrites them.

use std::path::{Path, PathBuf};

use llb_gen::convert::{NoImages, convert};
use llb_gen::plan::{BuildOptions, ContextOptions, Network};
use llb_gen::source::SourceFile;
use prost::Message;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Every stack the project ships: `stack.toml` and `examples/*/stack.toml`.
fn stacks() -> Vec<(String, PathBuf)> {
    let mut out = vec![("quickstart".to_string(), repo().join("stack.toml"))];
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("stack.toml").is_file())
        .collect();
    dirs.sort();
    for d in dirs {
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        out.push((name, d.join("stack.toml")));
    }
    out
}

fn options(target: &str, dir: &Path) -> BuildOptions {
    let ignore = std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default();
    // The lock files the stack names, as the CLI reads them (`lock = …`).
    let text = std::fs::read_to_string(dir.join("stack.toml")).unwrap_or_default();
    let (stack, _) = llb_gen::stack::parse(&SourceFile::new("stack.toml", text));
    let lock_files = llb_gen::plan::locks::lock_paths(&stack)
        .into_iter()
        .map(|p| {
            let t = std::fs::read_to_string(dir.join(&p)).ok();
            (p, t)
        })
        .collect();
    BuildOptions {
        lock_files,
        target: Some(target.to_string()),
        network: Network::Host,
        context: ContextOptions {
            name: "context".into(),
            session_id: String::new(),
            exclude_patterns: llb_gen::plan::dockerignore_patterns(&ignore),
        },
        ..BuildOptions::default()
    }
}

fn generate(path: &Path, target: &str) -> (String, Vec<u8>, Vec<u8>) {
    let text = std::fs::read_to_string(path).unwrap();
    let file = SourceFile::new("stack.toml", text);
    let opts = options(target, path.parent().unwrap());
    let (_, plan) = llb_gen::load(&file, &opts)
        .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.diagnostics.render(&e.file)));
    let out = convert(&plan, &opts, &NoImages, &file)
        .unwrap_or_else(|d| panic!("{}: {}", path.display(), d.render(&file)));
    let mut dump = llb_gen::llb::dump(&out.definition);
    dump.push_str("--- image config\n");
    let cfg: serde_json::Value = serde_json::from_slice(&out.image_config).unwrap();
    dump.push_str(&serde_json::to_string_pretty(&cfg["config"]).unwrap());
    dump.push('\n');
    (dump, out.definition.encode_to_vec(), out.image_config)
}

/// The readable plan of one target (the plan snapshot).
fn plan_text(path: &Path, target: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let file = SourceFile::new("stack.toml", text);
    let opts = options(target, path.parent().unwrap());
    let (_, plan) = llb_gen::load(&file, &opts)
        .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.diagnostics.render(&e.file)));
    llb_gen::report::plan_text::render(&plan, &file)
}

#[test]
fn every_example_target_matches_its_snapshot() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failures = vec![];
    let mut count = 0;
    for (name, path) in stacks() {
        let text = std::fs::read_to_string(&path).unwrap();
        let (stack, _) = llb_gen::stack::parse(&SourceFile::new("stack.toml", text));
        for img in &stack.images {
            let target = &img.name.value;
            let (dump, _, _) = generate(&path, target);
            let plan_text = plan_text(&path, target);
            count += 1;
            // The LLB and, next to it, the readable plan it was converted from.
            for (file, text) in [
                (format!("{name}__{target}.txt"), &dump),
                (format!("{name}__{target}.plan.txt"), &plan_text),
            ] {
                let snap = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/snapshots")
                    .join(file);
                if update {
                    std::fs::write(&snap, text).unwrap();
                    continue;
                }
                match std::fs::read_to_string(&snap) {
                    Ok(expected) if expected == *text => {}
                    Ok(expected) => failures.push(format!(
                        "{}: differs\n{}",
                        snap.display(),
                        first_difference(&expected, text)
                    )),
                    Err(_) => failures.push(format!(
                        "{}: missing (run with UPDATE_SNAPSHOTS=1)",
                        snap.display()
                    )),
                }
            }
        }
    }
    assert!(
        count >= 5,
        "expected snapshots for several targets, found {count}"
    );
    assert!(
        failures.is_empty(),
        "{} snapshot(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn first_difference(expected: &str, actual: &str) -> String {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("  line {}:\n  - {e}\n  + {a}", i + 1);
        }
    }
    format!(
        "  lengths differ: {} vs {} lines",
        expected.lines().count(),
        actual.lines().count()
    )
}

#[test]
fn generation_is_byte_identical_across_runs() {
    for (_, path) in stacks() {
        let text = std::fs::read_to_string(&path).unwrap();
        let (stack, _) = llb_gen::stack::parse(&SourceFile::new("stack.toml", text));
        for img in &stack.images {
            let (d1, b1, c1) = generate(&path, &img.name.value);
            let (d2, b2, c2) = generate(&path, &img.name.value);
            assert_eq!(b1, b2, "{}: LLB bytes differ between runs", path.display());
            assert_eq!(
                c1,
                c2,
                "{}: image config differs between runs",
                path.display()
            );
            assert_eq!(d1, d2);
        }
    }
}

#[test]
fn the_cli_prints_the_same_definition() {
    // The binary's output is the library's output: one code path.
    let exe = env!("CARGO_BIN_EXE_llb-gen");
    let path = repo().join("stack.toml");
    let out = std::process::Command::new(exe)
        .args([
            "llb",
            path.to_str().unwrap(),
            "--target",
            "api",
            "--network",
            "host",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let def =
        llb_gen::pb::Definition::decode(out.stdout.as_slice()).expect("a marshalled Definition");
    assert!(def.def.len() > 3);
    let again = std::process::Command::new(exe)
        .args([
            "llb",
            path.to_str().unwrap(),
            "--target",
            "api",
            "--network",
            "host",
        ])
        .output()
        .unwrap();
    assert_eq!(out.stdout, again.stdout);
}

/// A conda layer (micromamba with a locked package cache) with pip after it, as the clm seed's
/// notebook service needs: its LLB is pinned by a snapshot too.
#[test]
fn conda_layer_matches_its_snapshot() {
    let text = r#"# syntax=layerstack:dev
[layers.notebook]
from = "mambaorg/micromamba:1.5.8"
conda = { file = "docker/notebook/packages.yaml", channels = ["conda-forge"] }
pip = ["jupytext==1.16.4"]

[services.notebook-processor]
from = "notebook"
copy = ["services/notebook"]
cmd = ["python", "-m", "notebook_processor"]
"#;
    let file = SourceFile::new("stack.toml", text);
    let opts = BuildOptions {
        target: Some("notebook-processor".into()),
        network: Network::Host,
        ..BuildOptions::default()
    };
    let (_, plan) =
        llb_gen::load(&file, &opts).unwrap_or_else(|e| panic!("{}", e.diagnostics.render(&e.file)));
    let out =
        convert(&plan, &opts, &NoImages, &file).unwrap_or_else(|d| panic!("{}", d.render(&file)));
    let dump = llb_gen::llb::dump(&out.definition);
    let snap =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/conda__notebook-processor.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snap, &dump).unwrap();
    }
    let expected = std::fs::read_to_string(&snap).expect("snapshot (run with UPDATE_SNAPSHOTS=1)");
    assert_eq!(expected, dump, "{}", first_difference(&expected, &dump));
    assert!(dump.contains("args: micromamba install -y -n base -f /run/layerstack/conda/docker/notebook/packages.yaml -c conda-forge"), "{dump}");
    assert!(
        dump.contains("mount /opt/conda/pkgs cache id=layerstack-conda-linux-amd64 sharing=locked"),
        "{dump}"
    );
}

/// clm's `full` variant (the seed's notebook image on Ubuntu with the dotnet/backports PPA): CI
/// can't reach Launchpad, so it is never built there; its LLB is pinned by a snapshot instead.
#[test]
fn clm_full_variant_matches_its_snapshot() {
    let path = repo().join("examples/clm/stack.toml");
    let (dump, _, _) = generate(&path, "notebook-processor@full");
    let snap = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/clm__notebook-processor@full.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snap, &dump).unwrap();
    }
    let expected = std::fs::read_to_string(&snap).expect("snapshot (run with UPDATE_SNAPSHOTS=1)");
    assert_eq!(expected, dump, "{}", first_difference(&expected, &dump));
    for want in [
        "docker-image://docker.io/mambaorg/micromamba:1.5.10-jammy",
        "apt sources dotnet-backports; apt-get install dotnet-sdk-8.0",
        "URIs: https://ppa.launchpadcontent.net/dotnet/backports/ubuntu",
        "Signed-By: /etc/apt/keyrings/layerstack-dotnet-backports.asc",
        "keys/dotnet-backports.asc",
    ] {
        assert!(dump.contains(want), "missing {want:?}:\n{dump}");
    }
}

/// ragex's `app` for linux/arm64 built on linux/amd64: its torch and requirements steps are
/// cross-installed (probe, install on the amd64 twin, merge) and the twin skips its own
/// installs. Pinned by a snapshot; a probe's verdict turns one step back into an emulated
/// install that says why.
#[test]
fn cross_install_for_arm64_matches_its_snapshot() {
    use llb_gen::convert::{CrossEnv, CrossVerdict, ResolvedImages, convert_cross};
    use llb_gen::platform::Platform;
    use std::collections::BTreeMap;

    let path = repo().join("examples/ragex/stack.toml");
    let file = SourceFile::new("stack.toml", std::fs::read_to_string(&path).unwrap());
    let opts = BuildOptions {
        platform: Platform::parse("linux/arm64").unwrap(),
        merge: true,
        ..options("app@cpu", path.parent().unwrap())
    };
    let (stack, plan) =
        llb_gen::load(&file, &opts).unwrap_or_else(|e| panic!("{}", e.diagnostics.render(&e.file)));
    let twin = llb_gen::twin_plan(&stack, &opts).expect("app@cpu plans for linux/amd64");
    let none = BTreeMap::new();
    let convert_with = |verdicts: &BTreeMap<String, CrossVerdict>, ask: bool| {
        let cross = CrossEnv {
            twin: Some(&twin),
            verdicts,
            ask,
        };
        convert_cross(&plan, &opts, &ResolvedImages::default(), &file, Some(cross))
            .unwrap_or_else(|d| panic!("{}", d.render(&file)))
    };
    let assumed = convert_with(&none, false);
    assert!(assumed.probes.is_empty());
    let dump = llb_gen::llb::dump(&assumed.definition);
    let snap = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/ragex__app@cpu-linux-arm64-cross.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snap, &dump).unwrap();
    }
    let expected = std::fs::read_to_string(&snap).expect("snapshot (run with UPDATE_SNAPSHOTS=1)");
    assert_eq!(expected, dump, "{}", first_difference(&expected, &dump));
    for step in [
        "[layer ml 1/4] pip install torch==2.1.2 torchvision==0.16.2 (cross-install on linux/amd64 for linux/arm64) (merge)",
        "[layer ml 2/4] pip install -r requirements/base-ml.txt (cross-install on linux/amd64 for linux/arm64) (merge)",
        "[service app 1/3] pip install -r requirements/app.txt (cross-install on linux/amd64 for linux/arm64) (merge)",
    ] {
        assert!(dump.contains(step), "missing {step:?}:\n{dump}");
    }
    // The twin runs no installs of its own: every amd64 exec is apt, useradd or a
    // cross-install.
    assert!(
        !dump
            .contains("exec  [linux/amd64]\n    name: [layer ml 1/4] pip install torch==2.1.2+cpu")
    );

    // Asking: the first unanswered probe is the first install step's.
    let asked = convert_with(&none, true);
    assert_eq!(asked.probes.len(), 3, "one probe per install step");
    assert!(
        asked.probes[0].name.contains("[layer ml 1/4]"),
        "{}",
        asked.probes[0].name
    );
    // A probe's key is its root vertex's digest (the op just before the terminal).
    for p in &asked.probes {
        let d = llb_gen::llb::op_digests(&p.definition);
        assert_eq!(p.key, d[d.len() - 2], "{}", p.name);
    }
    let mut verdicts = BTreeMap::new();
    verdicts.insert(
        asked.probes[0].key.clone(),
        CrossVerdict::Emulate("no wheel of torch==2.1.2 for this platform".into()),
    );
    let answered = convert_with(&verdicts, true);
    let dump = llb_gen::llb::dump(&answered.definition);
    assert!(
        dump.contains("[layer ml 1/4] pip install torch==2.1.2 torchvision==0.16.2 (emulated on linux/arm64: no wheel of torch==2.1.2 for this platform)"),
        "{dump}"
    );
    assert_eq!(answered.probes.len(), 2, "the later probes are still open");
    // Deterministic, answers included.
    assert_eq!(
        convert_with(&verdicts, true).definition,
        answered.definition
    );
}
