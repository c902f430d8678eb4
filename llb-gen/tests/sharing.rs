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
