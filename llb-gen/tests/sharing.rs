//! Shared solver vertices: identical layer definitions give identical vertex digests in every
//! service's LLB, so BuildKit builds each shared layer once for all services.

use std::collections::BTreeMap;

use llb_gen::convert::{NoImages, convert};
use llb_gen::plan::BuildOptions;
use llb_gen::source::SourceFile;

const STACK: &str = r#"# syntax=layerstack:dev
[layers.system]
from = "python:3.12-slim"
apt = ["curl"]
user = { name = "appuser", uid = 1000 }
workdir = "/app"

[layers.ml]
from = "system"
requirements = ["libs/requirements-ml.txt"]
pip = ["numpy==2.1.3"]

[services.ocr]
from = "ml"
apt = ["tesseract-ocr"]
copy = ["apps/ocr"]

[services.indexer]
from = "ml"
requirements = ["apps/indexer/requirements.txt"]
copy = ["apps/indexer"]

[services.retriever]
from = "ml"
copy = ["apps/retriever", "libs/common"]
cmd = ["python3", "-m", "apps.retriever"]
"#;

/// Vertex name → digest for one target's Definition.
fn digests(target: &str) -> BTreeMap<String, String> {
    let file = SourceFile::new("stack.toml", STACK);
    let opts = BuildOptions {
        target: Some(target.into()),
        ..BuildOptions::default()
    };
    let (_, plan) = llb_gen::load(&file, &opts).expect("valid stack");
    let out = convert(&plan, &opts, &NoImages, &file).expect("converts");
    let ids = llb_gen::llb::op_digests(&out.definition);
    ids.iter()
        .filter_map(|d| {
            out.definition
                .metadata
                .get(d)
                .and_then(|m| m.description.get("llb.customname"))
                .map(|n| (n.clone(), d.clone()))
        })
        .collect()
}

#[test]
fn layer_vertices_are_identical_in_every_service() {
    let ocr = digests("ocr");
    let indexer = digests("indexer");
    let retriever = digests("retriever");
    let layer_steps: Vec<&String> = ocr.keys().filter(|n| n.starts_with("[layer ")).collect();
    assert!(
        layer_steps.len() >= 6,
        "system and ml steps expected: {layer_steps:?}"
    );
    for name in layer_steps {
        assert_eq!(
            Some(&ocr[name]),
            indexer.get(name),
            "{name} differs between ocr and indexer"
        );
        assert_eq!(
            Some(&ocr[name]),
            retriever.get(name),
            "{name} differs between ocr and retriever"
        );
    }
    // The ML layer's last step — the state every service builds on — is one vertex.
    let ml = "[layer ml 1/1] pip install -r libs/requirements-ml.txt numpy==2.1.3";
    assert_eq!(ocr[ml], indexer[ml]);
    assert_eq!(ocr[ml], retriever[ml]);
    // While the services' own steps differ.
    assert_ne!(
        ocr.get("[service ocr 2/2] copy apps/ocr"),
        indexer.get("[service indexer 2/2] copy apps/indexer")
    );
}

#[test]
fn a_service_change_does_not_touch_the_layers() {
    // Changing only a service's definition leaves every layer vertex as it was.
    let before = digests("retriever");
    let changed = STACK.replace(
        "cmd = [\"python3\", \"-m\", \"apps.retriever\"]",
        "cmd = [\"python3\"]\napt = [\"jq\"]",
    );
    let file = SourceFile::new("stack.toml", changed);
    let opts = BuildOptions {
        target: Some("retriever".into()),
        ..BuildOptions::default()
    };
    let (_, plan) = llb_gen::load(&file, &opts).unwrap();
    let out = convert(&plan, &opts, &NoImages, &file).unwrap();
    let after: BTreeMap<String, String> = llb_gen::llb::op_digests(&out.definition)
        .iter()
        .filter_map(|d| {
            out.definition
                .metadata
                .get(d)
                .and_then(|m| m.description.get("llb.customname"))
                .map(|n| (n.clone(), d.clone()))
        })
        .collect();
    for (name, d) in before.iter().filter(|(n, _)| n.starts_with("[layer ")) {
        assert_eq!(after.get(name), Some(d), "{name}");
    }
}

/// A library built once in a build-only layer, copied into two services with different
/// owners, modes and workdirs.
const ARTIFACTS: &str = r#"# syntax=layerstack:dev
[layers.base]
from = "python:3.12-slim"

[layers.talib]
build-only = true
from = "base"
apt = ["gcc", "libc6-dev"]
run = ["make -C /src/ta-lib install PREFIX=/out"]

[services.api]
from = "base"
user = { name = "app", uid = 1000 }
workdir = "/app"
copy = [{ from = "talib", src = "/out/lib/libta_lib.so*", dest = "/usr/lib/", chown = "app", mode = "0755" }]

[services.worker]
from = "base"
workdir = "/srv"
copy = [{ from = "talib", src = "/out/lib/libta_lib.so*", dest = "lib/" }]
"#;

/// Vertex name → digest, and the readable dump, for one target of `stack`.
fn digests_of(
    stack: &str,
    target: &str,
    platform: &str,
    merge: bool,
) -> (BTreeMap<String, String>, String) {
    let file = SourceFile::new("stack.toml", stack);
    let opts = BuildOptions {
        target: Some(target.into()),
        platform: llb_gen::platform::Platform::parse(platform).unwrap(),
        merge,
        ..BuildOptions::default()
    };
    let (_, plan) = llb_gen::load(&file, &opts).expect("valid stack");
    let out = convert(&plan, &opts, &NoImages, &file).expect("converts");
    let names = llb_gen::llb::op_digests(&out.definition)
        .iter()
        .filter_map(|d| {
            out.definition
                .metadata
                .get(d)
                .and_then(|m| m.description.get("llb.customname"))
                .map(|n| (n.clone(), d.clone()))
        })
        .collect();
    (names, llb_gen::llb::dump(&out.definition))
}

#[test]
fn an_artifact_is_one_vertex_in_every_service_that_copies_it() {
    for merge in [false, true] {
        let (api, api_text) = digests_of(ARTIFACTS, "api", "linux/amd64", merge);
        let (worker, _) = digests_of(ARTIFACTS, "worker", "linux/amd64", merge);
        let artifact = "[layer talib] artifact /out/lib/libta_lib.so*";
        assert!(api.contains_key(artifact), "{api:?}");
        // Same digest although the two copies differ in owner, mode and destination.
        assert_eq!(api[artifact], worker[artifact]);
        // It copies the matches onto scratch: nothing of the service is an input.
        assert!(
            api_text.contains(":/out/lib/libta_lib.so* → scratch:/ contents wildcard"),
            "{api_text}"
        );
        // The services' own copies (owner, mode, destination) are theirs.
        let api_copy = "[service api 3/3] copy --from=talib /out/lib/libta_lib.so*";
        let worker_copy = "[service worker 2/2] copy --from=talib /out/lib/libta_lib.so*";
        assert!(api.contains_key(api_copy) && worker.contains_key(worker_copy));
        assert_ne!(api[api_copy], worker[worker_copy]);
        assert!(
            api_text.contains("/usr/lib/ owner=app mode=755 contents"),
            "{api_text}"
        );
        // The build-only layer's steps are the same vertices in both.
        for step in [
            "[layer talib 1/2] apt-get install gcc libc6-dev",
            "[layer talib 2/2] run make -C /src/ta-lib install PREFIX=/out",
        ] {
            assert_eq!(api.get(step), worker.get(step), "{step}");
            assert!(api.contains_key(step), "{step}");
        }
    }
}

#[test]
fn an_artifact_is_built_for_the_platform_of_the_image_copying_it() {
    let (amd, _) = digests_of(ARTIFACTS, "api", "linux/amd64", false);
    let (arm, arm_text) = digests_of(ARTIFACTS, "api", "linux/arm64", false);
    let artifact = "[layer talib] artifact /out/lib/libta_lib.so*";
    assert_ne!(amd[artifact], arm[artifact]);
    // Every vertex of the arm64 build, the builder's included, is for arm64.
    assert!(!arm_text.contains("amd64"), "{arm_text}");
    assert!(arm_text.contains("[linux/arm64]\n    name: [layer talib] artifact"));
}

#[test]
fn a_change_in_the_artifact_source_changes_the_copy_and_nothing_under_it() {
    let (before, _) = digests_of(ARTIFACTS, "worker", "linux/amd64", false);
    let changed = ARTIFACTS.replace("PREFIX=/out", "PREFIX=/out CFLAGS=-O3");
    let (after, _) = digests_of(&changed, "worker", "linux/amd64", false);
    assert_eq!(
        before["[layer base] from docker.io/library/python:3.12-slim"],
        after["[layer base] from docker.io/library/python:3.12-slim"]
    );
    let artifact = "[layer talib] artifact /out/lib/libta_lib.so*";
    assert_ne!(before[artifact], after[artifact]);
}
