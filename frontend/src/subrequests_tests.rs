//! Tests of the subrequest answers (JSON and text as buildx prints them).

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

const STACK: &str = r#"# syntax=layerstack:dev
[stack]
name = "demo"
default = "api"

[args]
PYTHON_VERSION = "3.12"
[args.INDEX]
default = "https://pypi.org/simple"
description = "Package index"

[layers.runtime]
description = "Python runtime"
from = "python:${PYTHON_VERSION}-slim"
apt = ["curl"]
pip = ["requests"]

[services.api]
description = "The HTTP API"
from = "runtime"
cmd = ["python3", "-m", "app"]

[services.worker]
from = "runtime"
cmd = ["python3", "-m", "worker"]

[layers.tools]
from = "alpine:3.20"
"#;

fn opts(pairs: &[(&str, &str)]) -> FrontendOpts {
    let m: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    FrontendOpts::from_opts(&m).unwrap()
}

fn inputs(text: &str) -> Inputs {
    Inputs {
        file: SourceFile::new("stack.toml", text),
        exclude_patterns: vec![],
        named_contexts: Default::default(),
        file_vertex: String::new(),
    }
}

fn call(req: &str, o: &[(&str, &str)], text: &str) -> ResultBuilder {
    match answer(req, &opts(o), &inputs(text)) {
        Ok(r) => r,
        Err(f) => panic!("{req} failed: {}", f.message),
    }
}

fn json(r: &ResultBuilder) -> Value {
    serde_json::from_slice(&r.metadata["result.json"]).unwrap()
}

fn txt(r: &ResultBuilder) -> String {
    String::from_utf8(r.metadata["result.txt"].clone()).unwrap()
}

fn lines(loc: &Value) -> (i64, i64) {
    let r = &loc["ranges"][0];
    (
        r["start"]["line"].as_i64().unwrap(),
        r["end"]["line"].as_i64().unwrap(),
    )
}

#[test]
fn metadata_only_with_version() {
    for req in [REQUEST_DESCRIBE, REQUEST_TARGETS, REQUEST_OUTLINE] {
        let r = call(req, &[], STACK);
        assert_eq!(r.refs, ResultBuilder::new().refs, "no ref");
        assert_eq!(r.metadata["version"], b"1.0.0");
        assert_eq!(
            r.metadata[METADATA_FRONTEND_VERSION],
            llb_gen::version::VERSION.as_bytes()
        );
        assert!(!r.metadata["result.txt"].is_empty());
        // Indented, as Go's json.MarshalIndent.
        assert!(
            r.metadata["result.json"].starts_with(b"{\n  \"")
                || r.metadata["result.json"].starts_with(b"[\n  {")
        );
    }
}

#[test]
fn describe_lists_five_requests() {
    let r = call(REQUEST_DESCRIBE, &[], STACK);
    let v = json(&r);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            REQUEST_OUTLINE,
            REQUEST_TARGETS,
            crate::lint::REQUEST_LINT,
            REQUEST_LOCK,
            REQUEST_DESCRIBE
        ]
    );
    for x in v.as_array().unwrap() {
        assert_eq!(x["version"], "1.0.0");
        assert_eq!(x["type"], "rpc");
        assert_eq!(x["metadata"][0]["name"], "result.json");
        assert_eq!(x["metadata"][1]["name"], "result.txt");
        for k in ["opts", "inputs", "refs", "description"] {
            assert!(x.get(k).is_some(), "{k} missing (no omitempty upstream)");
        }
    }
    assert_eq!(v[0]["opts"][0]["name"], "target");
    assert_eq!(v[1]["opts"], serde_json::json!([]));
    assert_eq!(v[2]["opts"], serde_json::json!([]));
    assert_eq!(v[2]["metadata"][2]["name"], "result.statuscode");
    assert_eq!(v[3]["opts"][0]["name"], "target");
    assert!(v[4]["opts"].is_null());
    assert_eq!(
        v[4]["description"],
        format!(
            "List available subrequest types (layerstack {})",
            llb_gen::version::VERSION
        )
    );
    let t = txt(&r);
    assert!(t.starts_with("NAME"));
    assert!(
        t.contains("\noutline              1.0.0   List all parameters"),
        "{t}"
    );
    assert!(
        t.contains("\nsubrequests.describe 1.0.0   List available"),
        "{t}"
    );
}

#[test]
fn targets_services_first_with_default_and_locations() {
    let r = call(REQUEST_TARGETS, &[], STACK);
    let v = json(&r);
    let t = v["targets"].as_array().unwrap();
    let names: Vec<&str> = t.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["api", "worker", "runtime", "tools"]);
    assert_eq!(t[0]["default"], true);
    for x in &t[1..] {
        assert!(x.get("default").is_none(), "omitempty: {x}");
    }
    assert_eq!(t[0]["description"], "service: The HTTP API");
    assert_eq!(t[1]["description"], "service");
    assert_eq!(t[2]["description"], "layer: Python runtime");
    assert_eq!(t[0]["base"], "runtime");
    assert_eq!(t[2]["base"], "python:${PYTHON_VERSION}-slim");
    assert!(t[0].get("platform").is_none());
    // Table headers: [services.api] is line 18, [services.worker] 23, [layers.runtime] 12,
    // [layers.tools] 27.
    assert_eq!(lines(&t[0]["location"]), (18, 18));
    assert_eq!(lines(&t[1]["location"]), (23, 23));
    assert_eq!(lines(&t[2]["location"]), (12, 12));
    assert_eq!(lines(&t[3]["location"]), (27, 27));
    // Go's omitempty: no sourceIndex 0, no character 0.
    assert!(t[0]["location"].get("sourceIndex").is_none());
    assert!(
        t[0]["location"]["ranges"][0]["start"]
            .get("character")
            .is_none()
    );
    assert_eq!(
        v["sources"],
        serde_json::json!([base64_std(STACK.as_bytes())])
    );
    let text = txt(&r);
    assert_eq!(
        text,
        "TARGET        DESCRIPTION\n\
         api (default) service: The HTTP API\n\
         worker        service\n\
         runtime       layer: Python runtime\n\
         tools         layer\n"
    );
}

#[test]
fn targets_default_without_stack_default() {
    let text = STACK.replace("default = \"api\"\n", "");
    let v = json(&call(REQUEST_TARGETS, &[], &text));
    let defaults: Vec<&str> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["default"] == true)
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, ["api"]); // the first service
}

const ARTIFACTS: &str = "[layers.talib]\nbuild-only = true\nfrom = \"python:3.12-slim\"\napt = [\"gcc\"]\n\
     [services.builder]\nbuild-only = true\nfrom = \"python:3.12-slim\"\n\
     [services.api]\nfrom = \"python:3.12-slim\"\ncopy = [{ from = \"talib\", src = \"/usr/lib/libta*\" }]\n";

#[test]
fn targets_mark_build_only_images_and_never_default_to_them() {
    let v = json(&call(REQUEST_TARGETS, &[], ARTIFACTS));
    let t: Vec<(&str, &str, bool)> = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap(),
                x["description"].as_str().unwrap(),
                x["default"] == true,
            )
        })
        .collect();
    assert_eq!(
        t,
        [
            ("builder", "service (build-only)", false),
            ("api", "service", true),
            ("talib", "layer (build-only)", false),
        ]
    );
}

#[test]
fn outline_counts_the_caches_of_images_copied_from() {
    // api installs nothing itself; the apt caches are talib's, built for api's copy.
    let v = json(&call(REQUEST_OUTLINE, &[], ARTIFACTS));
    assert_eq!(v["name"], "api");
    let cache: Vec<&str> = v["cache"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ID"].as_str().unwrap())
        .collect();
    assert_eq!(
        cache,
        [
            "layerstack-apt-cache-linux-amd64",
            "layerstack-apt-lib-linux-amd64"
        ]
    );
}

#[test]
fn outline_default_target_args_and_cache() {
    let r = call(REQUEST_OUTLINE, &[], STACK);
    let v = json(&r);
    assert_eq!(v["name"], "api");
    assert_eq!(v["description"], "service: The HTTP API");
    let args = v["args"].as_array().unwrap();
    assert_eq!(args.len(), 2);
    assert_eq!(args[0]["name"], "PYTHON_VERSION");
    assert_eq!(args[0]["value"], "3.12");
    assert!(args[0].get("description").is_none());
    assert_eq!(lines(&args[0]["location"]), (7, 7));
    assert_eq!(args[1]["name"], "INDEX");
    assert_eq!(args[1]["value"], "https://pypi.org/simple");
    assert_eq!(args[1]["description"], "Package index");
    assert_eq!(lines(&args[1]["location"]), (8, 10));
    let cache: Vec<&str> = v["cache"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ID"].as_str().unwrap())
        .collect();
    assert_eq!(
        cache,
        [
            "layerstack-apt-cache-linux-amd64",
            "layerstack-apt-lib-linux-amd64",
            "layerstack-pip-linux-amd64"
        ]
    );
    assert_eq!(lines(&v["cache"][0]["location"]), (15, 15));
    assert_eq!(lines(&v["cache"][2]["location"]), (16, 16));
    assert_eq!(v["sources"][0], base64_std(STACK.as_bytes()));
    assert!(v.get("secrets").is_none() && v.get("ssh").is_none());
    let t = txt(&r);
    assert!(
        t.starts_with("TARGET:      api\nDESCRIPTION: service: The HTTP API\n\n"),
        "{t}"
    );
    assert!(
        t.contains("BUILD ARG        VALUE                     DESCRIPTION\n"),
        "{t}"
    );
    assert!(
        t.contains("\nINDEX            https://pypi.org/simple   Package index\n"),
        "{t}"
    );
    assert!(
        t.contains("CACHE MOUNT\nlayerstack-apt-cache-linux-amd64\n"),
        "{t}"
    );
}

#[test]
fn outline_target_build_args_and_platforms() {
    let r = call(
        REQUEST_OUTLINE,
        &[
            ("target", "tools"),
            ("build-arg:PYTHON_VERSION", "3.13"),
            ("platform", "linux/arm64,linux/amd64"),
        ],
        STACK,
    );
    let v = json(&r);
    assert_eq!(v["name"], "tools");
    assert_eq!(v["description"], "layer");
    assert_eq!(v["args"][0]["value"], "3.13");
    // tools has no apt or pip steps.
    assert!(v.get("cache").is_none());

    let v = json(&call(
        REQUEST_OUTLINE,
        &[
            ("target", "runtime"),
            ("platform", "linux/arm64,linux/amd64"),
        ],
        STACK,
    ));
    let cache: Vec<&str> = v["cache"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ID"].as_str().unwrap())
        .collect();
    assert_eq!(
        cache,
        [
            "layerstack-apt-cache-linux-arm64",
            "layerstack-apt-lib-linux-arm64",
            "layerstack-pip-linux-arm64",
            "layerstack-apt-cache-linux-amd64",
            "layerstack-apt-lib-linux-amd64",
            "layerstack-pip-linux-amd64",
        ]
    );
}

#[test]
fn outline_venv_builder_caches() {
    let text = r#"
[services.app]
from = "python:3.12-slim"
pip = ["flask"]
venv = { builder-apt = ["gcc"] }
"#;
    let v = json(&call(
        REQUEST_OUTLINE,
        &[("platform", "linux/arm/v7")],
        text,
    ));
    let cache: Vec<&str> = v["cache"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ID"].as_str().unwrap())
        .collect();
    assert_eq!(
        cache,
        [
            "layerstack-apt-cache-linux-arm-v7",
            "layerstack-apt-lib-linux-arm-v7",
            "layerstack-pip-linux-arm-v7",
        ]
    );
    assert!(v.get("args").is_none());
}

#[test]
fn outline_unknown_target_fails() {
    let Err(f) = answer(
        REQUEST_OUTLINE,
        &opts(&[("target", "nope")]),
        &inputs(STACK),
    ) else {
        panic!("expected an error")
    };
    assert!(f.message.contains("nope"), "{}", f.message);
}

/// The invalid-stack corpus of llb-gen: whatever a subrequest reports first is what
/// `llb-gen check` reports first (one door into the core, one order of diagnostics).
#[test]
fn first_diagnostic_equals_llb_gen_check_for_the_invalid_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../llb-gen/tests/invalid");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let (mut compared, mut parse_level) = (0, 0);
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap();
        let file = SourceFile::new("stack.toml", text.clone());
        let check = llb_gen::check(&file, &llb_gen::plan::BuildOptions::default());
        let Some(first) = check.errors().next().map(|d| d.one_line(&file)) else {
            continue;
        };
        // Parse-level errors: every consumer reports `llb-gen check`'s first. Plan-level
        // ones depend on the target: the default target's plan (`llb-gen build`'s) then.
        let strict = llb_gen::parse_checked(&file).is_err();
        parse_level += usize::from(strict);
        let expected = if strict {
            first
        } else {
            match llb_gen::load(&file, &llb_gen::plan::BuildOptions::default()) {
                Err(e) => e.diagnostics.errors().next().unwrap().one_line(&file),
                Ok(_) => continue,
            }
        };
        for req in [REQUEST_TARGETS, REQUEST_OUTLINE] {
            match answer(req, &opts(&[]), &inputs(&text)) {
                Err(f) => {
                    let got = f.message.lines().next().unwrap_or_default();
                    assert_eq!(got, expected, "{}: {req}", p.display());
                    compared += 1;
                }
                Ok(_) => assert!(
                    !strict,
                    "{}: {req} accepted a stack with parse errors",
                    p.display()
                ),
            }
        }
    }
    assert!(
        parse_level >= 20 && compared >= 40,
        "{parse_level} parse-level stacks, {compared} comparisons"
    );
}

#[test]
fn parse_errors_carry_the_location() {
    let bad = "[services.api]\nfrom = \"python:3.12\"\nfrom2 = 1\n";
    for req in [REQUEST_TARGETS, REQUEST_OUTLINE] {
        let Err(f) = answer(req, &opts(&[]), &inputs(bad)) else {
            panic!("{req}: expected an error")
        };
        assert!(f.message.contains("from2"), "{}", f.message);
        assert_eq!(f.details.len(), 1, "{req}: source detail");
    }
    // describe does not read the stack.
    assert!(answer(REQUEST_DESCRIBE, &opts(&[]), &inputs(bad)).is_ok());
}

#[test]
fn other_requests_do_not_say_unsupported_request() {
    for req in ["frontend.convertllb", "frontend.whatever"] {
        let Err(f) = answer(req, &opts(&[]), &inputs(STACK)) else {
            panic!("{req}: expected an error")
        };
        assert!(!f.message.contains("unsupported request"), "{}", f.message);
        assert!(f.message.contains(req));
        assert!(f.message.contains(REQUEST_OUTLINE));
    }
}

#[test]
fn base64_matches_go() {
    assert_eq!(base64_std(b""), "");
    assert_eq!(base64_std(b"f"), "Zg==");
    assert_eq!(base64_std(b"fo"), "Zm8=");
    assert_eq!(base64_std(b"foo"), "Zm9v");
    assert_eq!(base64_std(b"foob"), "Zm9vYg==");
}

#[test]
fn outline_lists_the_lock_files_and_how_their_wheels_are_cached() {
    let stack = "[secrets.pypi]\n\n\
                 [layers.deps]\nfrom = \"python:3.12-slim\"\nlock = \"pylock.toml\"\n\n\
                 [services.api]\nfrom = \"deps\"\n\
                 lock = { file = \"pylock.api.toml\", auth-secret = \"pypi\" }\n";
    let r = call(REQUEST_OUTLINE, &[("target", "api")], stack);
    let v = json(&r);
    let locks = v["locks"].as_array().expect("locks");
    assert_eq!(locks.len(), 2, "{v}");
    assert_eq!(locks[0]["file"], "pylock.toml");
    assert_eq!(locks[0]["wheels"], "http sources, cached by sha256");
    assert!(locks[0].get("authSecret").is_none(), "{v}");
    assert_eq!(lines(&locks[0]["location"]), (5, 5));
    assert_eq!(locks[1]["file"], "pylock.api.toml");
    assert_eq!(locks[1]["authSecret"], "pypi");
    assert_eq!(lines(&locks[1]["location"]), (9, 9));
    // No cache mount for them: BuildKit keeps the downloads by checksum.
    assert!(v.get("cache").is_none(), "{v}");
    let t = txt(&r);
    assert!(t.contains("LOCK FILE"), "{t}");
    assert!(
        t.lines().any(|l| l.starts_with("pylock.api.toml")
            && l.contains("http sources, cached by sha256")
            && l.trim_end().ends_with("pypi")),
        "{t}"
    );
    // A stack without locks: no `locks` key at all (upstream's outline JSON unchanged).
    let v = json(&call(REQUEST_OUTLINE, &[], STACK));
    assert!(v.get("locks").is_none(), "{v}");
}
