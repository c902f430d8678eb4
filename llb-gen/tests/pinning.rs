//! Base images pinned by digest: with the digest the engine resolved (given as data through the
//! `ImageResolver`), every platform's `docker-image://` source names `reference@digest`, like the
//! Dockerfile frontend's `FROM`; offline (no digest known) the sources stay as written. Also the
//! other half of cache parity: an answered cross-install probe stays in the image's graph.

use std::collections::BTreeMap;

use llb_gen::convert::{
    CrossEnv, CrossVerdict, NoImages, ResolvedImages, convert, convert_cross, pinned_reference,
};
use llb_gen::plan::BuildOptions;
use llb_gen::platform::Platform;
use llb_gen::source::SourceFile;

const STACK: &str = r#"# syntax=layerstack:dev
[layers.system]
from = "python:3.12-slim"
apt = ["curl"]

[services.api]
from = "system"
pip = ["requests==2.32.3"]
venv = { builder = "python:3.11-slim" }
"#;

/// A pip step that cross-installs for a foreign platform.
const CROSS_STACK: &str = "[layers.base]\nfrom = \"python:3.12-slim\"\napt = [\"file\"]\n\n\
     [services.api]\nfrom = \"base\"\npip = [\"six==1.16.0\"]\n";

const PY: &str = "docker.io/library/python:3.12-slim";
const BUILDER: &str = "docker.io/library/python:3.11-slim";
const PY_INDEX: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const BUILDER_INDEX: &str =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn opts(platform: &str) -> BuildOptions {
    BuildOptions {
        target: Some("api".into()),
        platform: Platform::parse(platform).unwrap(),
        merge: true,
        ..BuildOptions::default()
    }
}

/// The `docker-image://…` identifiers of a definition, in op order.
fn image_sources(def: &llb_gen::pb::Definition) -> Vec<String> {
    llb_gen::llb::dump(def)
        .lines()
        .filter_map(|l| l.split_once("source docker-image://"))
        .map(|(_, rest)| rest.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// Both images resolved, for both platforms, to their (multi-platform) index digests.
fn resolved() -> ResolvedImages {
    let mut images = ResolvedImages::default();
    for platform in ["linux/amd64", "linux/arm64"] {
        for (r, d) in [(PY, PY_INDEX), (BUILDER, BUILDER_INDEX)] {
            images
                .digests
                .insert((r.to_string(), platform.to_string()), d.to_string());
        }
    }
    images
}

#[test]
fn offline_sources_stay_as_written() {
    let file = SourceFile::new("stack.toml", STACK);
    let o = opts("linux/amd64");
    let (_, plan) = llb_gen::load(&file, &o).expect("valid stack");
    let out = convert(&plan, &o, &NoImages, &file).expect("converts");
    let mut sources = image_sources(&out.definition);
    sources.sort();
    assert_eq!(sources, vec![BUILDER.to_string(), PY.to_string()]);
}

#[test]
fn every_platform_pins_every_base_to_the_resolved_digest() {
    let file = SourceFile::new("stack.toml", STACK);
    let images = resolved();
    for platform in ["linux/amd64", "linux/arm64"] {
        let o = opts(platform);
        let (_, plan) = llb_gen::load(&file, &o).expect("valid stack");
        let out = convert(&plan, &o, &images, &file).expect("converts");
        let mut sources = image_sources(&out.definition);
        sources.sort();
        assert_eq!(
            sources,
            vec![
                format!("{BUILDER}@{BUILDER_INDEX}"),
                format!("{PY}@{PY_INDEX}")
            ],
            "{platform}"
        );
    }
    // The digest is part of the op: a tag that moved gives another definition.
    let o = opts("linux/amd64");
    let (_, plan) = llb_gen::load(&file, &o).unwrap();
    let a = convert(&plan, &o, &images, &file).unwrap();
    let mut moved = images.clone();
    moved.digests.insert(
        (PY.to_string(), "linux/amd64".to_string()),
        format!("sha256:{}", "3".repeat(64)),
    );
    let b = convert(&plan, &o, &moved, &file).unwrap();
    assert_ne!(a.definition, b.definition);
}

#[test]
fn a_cross_installed_platform_pins_its_twin_too() {
    let file = SourceFile::new("stack.toml", CROSS_STACK);
    let o = opts("linux/arm64");
    let (stack, plan) = llb_gen::load(&file, &o).expect("valid stack");
    let twin = llb_gen::twin_plan(&stack, &o).expect("plans for the build platform");
    let verdicts = BTreeMap::<String, CrossVerdict>::new();
    let cross = CrossEnv {
        twin: Some(&twin),
        verdicts: &verdicts,
        ask: false,
    };
    let out = convert_cross(&plan, &o, &resolved(), &file, Some(cross)).expect("converts");
    let dump = llb_gen::llb::dump(&out.definition);
    assert!(dump.contains("(cross-install on linux/amd64"), "{dump}");
    let pinned = format!("source docker-image://{PY}@{PY_INDEX}");
    for platform in ["[linux/arm64]", "[linux/amd64]"] {
        assert!(
            dump.lines()
                .any(|l| l.contains(&pinned) && l.ends_with(platform)),
            "no pinned {platform} source:\n{dump}"
        );
    }
    assert!(!dump.contains(&format!("docker-image://{PY} ")), "{dump}");
}

#[test]
fn a_malformed_digest_is_an_error_at_the_from_line() {
    let file = SourceFile::new("stack.toml", STACK);
    let o = opts("linux/amd64");
    let (_, plan) = llb_gen::load(&file, &o).unwrap();
    let mut images = ResolvedImages::default();
    images.digests.insert(
        (PY.to_string(), "linux/amd64".to_string()),
        "latest".to_string(),
    );
    let d = convert(&plan, &o, &images, &file).expect_err("malformed digest");
    let text = d.render(&file);
    assert!(text.contains(PY) && text.contains("`latest`"), "{text}");
    assert!(text.contains("stack.toml:3"), "{text}");
}

#[test]
fn pinned_reference_keeps_an_existing_digest() {
    let d = format!("sha256:{}", "a".repeat(64));
    assert_eq!(
        pinned_reference("python:3.12-slim", &d).unwrap(),
        format!("python:3.12-slim@{d}")
    );
    let already = format!("python@sha256:{}", "b".repeat(64));
    assert_eq!(pinned_reference(&already, &d).unwrap(), already);
    assert!(pinned_reference("python", "sha256:xyz").is_err());
    assert!(pinned_reference("python", ":abc").is_err());
}

/// A cross-install whose probe was answered mounts the probe's verdict (read-only), so the probe
/// is part of the image's graph and a `mode=max` cache export holds it; an assumed verdict (the
/// CLI, nothing asked) leaves the install without it.
#[test]
fn an_answered_probe_is_part_of_the_cross_install() {
    let file = SourceFile::new("stack.toml", CROSS_STACK);
    let o = opts("linux/arm64");
    let (stack, plan) = llb_gen::load(&file, &o).expect("valid stack");
    let twin = llb_gen::twin_plan(&stack, &o).expect("plans for the build platform");
    let convert_with = |verdicts: &BTreeMap<String, CrossVerdict>, ask: bool| {
        let cross = CrossEnv {
            twin: Some(&twin),
            verdicts,
            ask,
        };
        convert_cross(&plan, &o, &NoImages, &file, Some(cross)).expect("converts")
    };
    let mount = format!("mount {} ←", llb_gen::convert::CROSS_PROBE);
    let assumed = llb_gen::llb::dump(&convert_with(&BTreeMap::new(), false).definition);
    assert!(
        assumed.contains("(cross-install on linux/amd64"),
        "{assumed}"
    );
    assert!(!assumed.contains(&mount), "{assumed}");

    let asked = convert_with(&BTreeMap::new(), true);
    assert_eq!(asked.probes.len(), 1);
    let mut verdicts = BTreeMap::new();
    verdicts.insert(asked.probes[0].key.clone(), CrossVerdict::Cross);
    let answered = convert_with(&verdicts, true);
    assert!(answered.probes.is_empty());
    let dump = llb_gen::llb::dump(&answered.definition);
    let install = dump
        .split("\nv")
        .find(|op| op.contains("cross_install.py install"))
        .unwrap_or_else(|| panic!("no cross-install exec:\n{dump}"));
    assert!(install.contains(&mount), "{install}");
    assert!(
        dump.contains(": resolve for linux/arm64 (on linux/amd64)"),
        "the probe is in the definition:\n{dump}"
    );
}
