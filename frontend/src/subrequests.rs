//! Subrequests (`docker buildx build --call …`): describe, targets and outline.
//!
//! A request carrying the `requestid` opt is not a build: the frontend answers with metadata
//! only (no ref): `result.json` (indented JSON), `result.txt` (a human table) and `version`.
//! The JSON follows BuildKit's Go types so that buildx can decode it with them:
//!
//! - `frontend.subrequests.describe`: `[]subrequests.Request`
//!   (moby/buildkit `frontend/subrequests/types.go`, `describe.go`);
//! - `frontend.targets`: `targets.List` (`frontend/subrequests/targets/targets.go`);
//! - `frontend.outline`: `outline.Outline` (`frontend/subrequests/outline/outline.go`);
//! - locations: `pb.Location` / `pb.Range` / `pb.Position` (`solver/pb/ops.pb.go`, every field
//!   `omitempty`: source index 0 and character 0 are left out, as Go writes them).
//!
//! `sources` is Go's `[][]byte`: each entry is the whole stack file, base64 (standard, padded),
//! *not* a `SourceInfo` object — buildx unmarshals `result.json` into those Go types before
//! printing (when `version` is not newer than the one it knows), and an object there would
//! fail to decode.
//!
//! All three answer with `version` "1.0.0", the version of each definition upstream (unchanged
//! from BuildKit v0.11 to v0.2x). buildx prints `result.txt` only when the frontend's version is
//! newer than the one it was built with; otherwise it prints `result.json` with its own
//! printer, so `result.txt` mostly serves other clients.
//!
//! # Requests we do not answer (`frontend.lint`, `frontend.convertllb`, …)
//!
//! They fail with an error that must not read "unsupported request frontend.X": buildx (from
//! v0.14; `fallbackPrintError` in `build/build.go`) matches that text for `frontend.outline`,
//! `frontend.targets` and `frontend.lint` and then re-runs the request with
//! `BUILDKIT_SYNTAX` set to the Dockerfile frontend, which would parse stack.toml as a
//! Dockerfile and print nonsense. BuildKit's typed `errdefs.UnsupportedSubrequestError` has the
//! same effect, so we never send it either.
//!
//! buildx v0.13 has no lint at all: only the experimental `--print=<name>`
//! (`BUILDX_EXPERIMENTAL=1`, requestid `frontend.<name>`), which falls back to
//! `docker/dockerfile:1.5.2-labs` only on a *typed* unsupported-subrequest error for outline or
//! targets. buildx v0.14 added `--print=lint` (experimental) with a lint fallback image; v0.15
//! made `--call=check|outline|targets` and `--check` (= `--call=check`, sent as
//! `requestid=frontend.lint`) regular flags. So `docker buildx build --check -f stack.toml .`
//! gets our error below (and a non-zero exit), which points at `llb-gen check`.

use std::collections::BTreeSet;

use llb_gen::diag::{Diagnostics, StackError};
use llb_gen::plan::{self, Plan};
use llb_gen::source::{SourceFile, Span};
use llb_gen::stack::{ImageDef, Stack};
use serde::Serialize;

use crate::build::{Failure, Inputs};
use crate::gateway::{ResultBuilder, base64_std};
use crate::opts::FrontendOpts;

/// `frontend.subrequests.describe`: the list of supported subrequests.
pub const REQUEST_DESCRIBE: &str = "frontend.subrequests.describe";
/// `frontend.outline`: the parameters (args, cache mounts) of one target.
pub const REQUEST_OUTLINE: &str = "frontend.outline";
/// `frontend.targets`: every layer and service.
pub const REQUEST_TARGETS: &str = "frontend.targets";

/// The version of each subrequest definition, as upstream (`Version: "1.0.0"` in
/// describe.go, targets.go, outline.go).
pub const VERSION: &str = "1.0.0";

/// The describe request's description: upstream's, then which layerstack answers.
const DESCRIBE_DESCRIPTION: &str = concat!(
    "List available subrequest types (layerstack ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Metadata key (besides upstream's three) with the frontend's version, in every answer.
pub const METADATA_FRONTEND_VERSION: &str = "layerstack.version";

/// Answer a subrequest by id.
pub fn answer(req: &str, opts: &FrontendOpts, inputs: &Inputs) -> Result<ResultBuilder, Failure> {
    match req {
        REQUEST_DESCRIBE => respond(&definitions(), print_describe(&definitions())),
        REQUEST_TARGETS => {
            let list = targets(inputs)?;
            let txt = print_targets(&list);
            respond(&list, txt)
        }
        REQUEST_OUTLINE => {
            let o = outline(opts, inputs)?;
            let txt = print_outline(&o);
            respond(&o, txt)
        }
        other => Err(Failure::plain(not_implemented(other))),
    }
}

/// The error for a subrequest we do not answer. Never "unsupported request …" (see the module
/// docs).
fn not_implemented(req: &str) -> String {
    let supported = [REQUEST_DESCRIBE, REQUEST_OUTLINE, REQUEST_TARGETS].join(", ");
    let mut msg = format!("layerstack does not implement `{req}`; supported: {supported}");
    if req == "frontend.lint" {
        msg.push_str(
            ". Build checks (--check / --call=check) are for Dockerfiles; \
             check a stack with `llb-gen check stack.toml`",
        );
    }
    msg
}

/// Metadata-only result: `result.json`, `result.txt`, `version`.
fn respond<T: Serialize>(value: &T, txt: String) -> Result<ResultBuilder, Failure> {
    let json = serde_json::to_vec_pretty(value)
        .map_err(|e| Failure::plain(format!("cannot encode the subrequest result: {e}")))?;
    let mut r = ResultBuilder::new();
    r.add_metadata("result.json", json);
    r.add_metadata("result.txt", txt.into_bytes());
    r.add_metadata("version", VERSION.as_bytes().to_vec());
    r.add_metadata(
        METADATA_FRONTEND_VERSION,
        llb_gen::version::VERSION.as_bytes().to_vec(),
    );
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// JSON shapes (field names and omitempty as the Go json tags).

/// `subrequests.Request` (frontend/subrequests/types.go). No omitempty: a nil slice is `null`.
#[derive(Debug, Serialize)]
struct Request {
    name: &'static str,
    version: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    description: &'static str,
    opts: Option<Vec<Named>>,
    inputs: Option<Vec<Named>>,
    metadata: Option<Vec<Named>>,
    refs: Option<Vec<Named>>,
}

/// `subrequests.Named`.
#[derive(Debug, Serialize)]
struct Named {
    name: &'static str,
    description: &'static str,
}

/// `pb.Location`.
#[derive(Debug, Clone, Serialize)]
struct Location {
    #[serde(rename = "sourceIndex", skip_serializing_if = "is_zero")]
    source_index: i32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ranges: Vec<Range>,
}

/// `pb.Range`.
#[derive(Debug, Clone, Serialize)]
struct Range {
    start: Position,
    end: Position,
}

/// `pb.Position`: 1-based line; character 0 (whole lines, as the Dockerfile frontend).
#[derive(Debug, Clone, Serialize)]
struct Position {
    #[serde(skip_serializing_if = "is_zero")]
    line: i32,
    #[serde(skip_serializing_if = "is_zero")]
    character: i32,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `targets.List`. `sources` has no omitempty.
#[derive(Debug, Serialize)]
struct TargetList {
    targets: Vec<Target>,
    sources: Vec<String>,
}

/// `targets.Target`.
#[derive(Debug, Serialize)]
struct Target {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "is_false")]
    default: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    base: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    platform: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
}

/// `outline.Outline`. Secrets and SSH are always empty (stacks have neither) and omitted.
#[derive(Debug, Serialize)]
struct Outline {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<Arg>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cache: Vec<CacheMount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sources: Vec<String>,
}

/// `outline.Arg`.
#[derive(Debug, Serialize)]
struct Arg {
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
}

/// `outline.CacheMount` (the id's json name is `ID`).
#[derive(Debug, Serialize)]
struct CacheMount {
    #[serde(rename = "ID")]
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
}

// ---------------------------------------------------------------------------------------------
// describe

const RESULT_METADATA: [Named; 2] = [
    Named {
        name: "result.json",
        description: "",
    },
    Named {
        name: "result.txt",
        description: "",
    },
];

/// The definitions we answer, in upstream's order (dockerui/requests.go `describe`: outline,
/// targets, then describe itself), each exactly as upstream defines it.
fn definitions() -> Vec<Request> {
    vec![
        Request {
            name: REQUEST_OUTLINE,
            version: VERSION,
            kind: "rpc",
            description: "List all parameters current build target supports",
            opts: Some(vec![Named {
                name: "target",
                description: "Target build stage",
            }]),
            inputs: None,
            metadata: Some(RESULT_METADATA.into()),
            refs: None,
        },
        Request {
            name: REQUEST_TARGETS,
            version: VERSION,
            kind: "rpc",
            description: "List all targets current build supports",
            opts: Some(vec![]),
            inputs: None,
            metadata: Some(RESULT_METADATA.into()),
            refs: None,
        },
        Request {
            name: REQUEST_DESCRIBE,
            version: VERSION,
            kind: "rpc",
            // Upstream's text plus the frontend's version: what
            // `docker buildx build --call subrequests.describe` shows of it.
            description: DESCRIBE_DESCRIPTION,
            opts: None,
            inputs: None,
            metadata: Some(RESULT_METADATA.into()),
            refs: None,
        },
    ]
}

/// As `subrequests.PrintDescribe`.
fn print_describe(reqs: &[Request]) -> String {
    let mut rows = vec![vec![
        "NAME".to_string(),
        "VERSION".into(),
        "DESCRIPTION".into(),
    ]];
    for r in reqs {
        rows.push(vec![
            r.name.trim_start_matches("frontend.").to_string(),
            r.version.to_string(),
            r.description.to_string(),
        ]);
    }
    tabwrite(&rows, 1)
}

// ---------------------------------------------------------------------------------------------
// targets

/// Every service, then every layer, each group in file order: services are what people build
/// and deploy (the default target is normally one), layers are their bases.
fn targets(inputs: &Inputs) -> Result<TargetList, Failure> {
    let file = &inputs.file;
    // Only parse errors fail the listing; stack-wide problems (a missing `from`, a bad
    // `stack.default`) do not stop anyone from seeing what the stack defines.
    let stack = parse_stack(file)?;
    let default = stack.default_target();
    let mut targets: Vec<Target> = stack
        .services()
        .chain(stack.layers())
        .map(|img| Target {
            name: img.name.value.clone(),
            default: default == Some(img.name.value.as_str()),
            description: describe_image(img),
            base: img
                .from
                .as_ref()
                .map(|f| f.value.clone())
                .unwrap_or_default(),
            // Images do not pin a platform; the build's platforms come from --platform or
            // `stack.platforms`.
            platform: String::new(),
            location: Some(location(file, &[img.span])),
        })
        .collect();
    // `NAME@VARIANT` for every service in every variant (pick one with --target alone).
    for v in &stack.variants {
        for img in stack.services() {
            let platforms: Vec<&str> = v.platforms.iter().map(|p| p.value.as_str()).collect();
            let what = v
                .description
                .as_ref()
                .map(|d| d.value.clone())
                .unwrap_or_else(|| format!("variant {}", v.name.value));
            targets.push(Target {
                name: format!("{}@{}", img.name.value, v.name.value),
                default: false,
                description: format!(
                    "service {} in variant {}: {what}",
                    img.name.value, v.name.value
                ),
                base: img
                    .from
                    .as_ref()
                    .map(|f| f.value.clone())
                    .unwrap_or_default(),
                platform: platforms.join(","),
                location: Some(location(file, &[v.span])),
            });
        }
    }
    Ok(TargetList {
        targets,
        sources: vec![base64_std(file.text.as_bytes())],
    })
}

/// `service: The HTTP API`, or just the kind when there is no description.
fn describe_image(img: &ImageDef) -> String {
    match img.description.as_ref().map(|d| d.value.trim()) {
        Some(d) if !d.is_empty() => format!("{}: {d}", img.kind.as_str()),
        _ => img.kind.as_str().to_string(),
    }
}

/// As `targets.PrintTargets`.
fn print_targets(l: &TargetList) -> String {
    let mut rows = vec![vec!["TARGET".to_string(), "DESCRIPTION".into()]];
    for t in &l.targets {
        let name = match (t.name.is_empty(), t.default) {
            (true, true) => "(default)".to_string(),
            (false, true) => format!("{} (default)", t.name),
            _ => t.name.clone(),
        };
        rows.push(vec![name, t.description.clone()]);
    }
    tabwrite(&rows, 1)
}

// ---------------------------------------------------------------------------------------------
// outline

/// The target (`--target`, else the stack's default) planned like a build, for every platform
/// the build would run: its name and description, every `[args]` entry with the value the
/// build would use (`--build-arg`, else the default), and the cache mounts its steps use.
///
/// Unlike the Dockerfile frontend, which lists only the args a stage uses, this lists every
/// declared arg: args are stack-wide, in file order (upstream sorts by location too).
fn outline(opts: &FrontendOpts, inputs: &Inputs) -> Result<Outline, Failure> {
    let file = &inputs.file;
    let stack = parse_stack(file)?;
    // Stack-wide errors before platforms: an invalid `stack.platforms` entry is reported at
    // its line, not as a bad --platform.
    let checks = plan::check_stack(&stack);
    if checks.has_errors() {
        return Err(stack_failure(file, checks));
    }
    let stack_platforms = crate::build::stack_platforms(opts, &stack);
    let platforms = crate::build::platforms(opts, &stack_platforms)?;

    let mut first: Option<(Plan, std::collections::BTreeMap<String, String>)> = None;
    let mut cache: Vec<CacheMount> = vec![];
    let mut seen = BTreeSet::new();
    for platform in platforms {
        let bo = crate::build::build_options(opts, inputs, platform);
        let (_, plan) = llb_gen::load(file, &bo).map_err(|e| Failure::from_stack(&e))?;
        for (id, span) in cache_mounts(&plan, &bo, file)? {
            if seen.insert(id.clone()) {
                cache.push(CacheMount {
                    id,
                    location: Some(location(file, &[span])),
                });
            }
        }
        if first.is_none() {
            let values = plan::arg_values(&stack, &bo);
            first = Some((plan, values));
        }
    }
    let (plan, values) = first.expect("at least one platform");
    let target = stack.image(&plan.target);

    let args = stack
        .args
        .iter()
        .map(|a| {
            let mut spans = vec![a.name.span];
            spans.extend(a.default.as_ref().map(|d| d.span));
            spans.extend(a.description.as_ref().map(|d| d.span));
            Arg {
                name: a.name.value.clone(),
                description: a
                    .description
                    .as_ref()
                    .map(|d| d.value.clone())
                    .unwrap_or_default(),
                value: values.get(&a.name.value).cloned().unwrap_or_default(),
                location: Some(location(file, &spans)),
            }
        })
        .collect();

    Ok(Outline {
        name: plan.target.clone(),
        description: target.map(describe_image).unwrap_or_default(),
        args,
        cache,
        sources: vec![base64_std(file.text.as_bytes())],
    })
}

/// The cache mount ids of this plan's steps, read from the LLB the converter makes for it (so
/// they are exactly the build's: apt, pip, uv and conda caches, namespaced by platform and
/// variant), in order of first use, with the stack.toml lines of the step that uses each.
fn cache_mounts(
    plan: &Plan,
    bo: &plan::BuildOptions,
    file: &SourceFile,
) -> Result<Vec<(String, Span)>, Failure> {
    use prost::Message;
    let converted = llb_gen::convert::convert(plan, bo, &llb_gen::convert::NoImages, file)
        .map_err(|d| stack_failure(file, d))?;
    let def = &converted.definition;
    let digests = llb_gen::llb::op_digests(def);
    let mut out: Vec<(String, Span)> = vec![];
    for (bytes, digest) in def.def.iter().zip(&digests) {
        let Ok(op) = llb_gen::pb::Op::decode(bytes.as_slice()) else {
            continue;
        };
        let Some(llb_gen::pb::op::Op::Exec(exec)) = &op.op else {
            continue;
        };
        let line = def
            .source
            .as_ref()
            .and_then(|s| s.locations.get(digest))
            .and_then(|l| l.locations.first())
            .and_then(|l| l.ranges.first())
            .and_then(|r| r.start.as_ref())
            .map(|p| p.line.max(1) as usize)
            .unwrap_or(1);
        for m in &exec.mounts {
            if let Some(c) = m
                .cache_opt
                .as_ref()
                .filter(|_| m.mount_type == llb_gen::pb::MountType::Cache as i32)
            {
                if !out.iter().any(|(i, _)| *i == c.id) {
                    out.push((c.id.clone(), file.line_span(line)));
                }
            }
        }
    }
    Ok(out)
}

/// As `outline.PrintOutline`, plus a table of cache mount ids (upstream prints none).
fn print_outline(o: &Outline) -> String {
    let mut out = String::new();
    if !o.name.is_empty() || !o.description.is_empty() {
        let name = if o.name.is_empty() {
            "(default)".to_string()
        } else {
            o.name.clone()
        };
        let mut rows = vec![vec!["TARGET:".to_string(), name]];
        if !o.description.is_empty() {
            rows.push(vec!["DESCRIPTION:".into(), o.description.clone()]);
        }
        out.push_str(&tabwrite(&rows, 1));
        out.push('\n');
    }
    if !o.args.is_empty() {
        let mut rows = vec![vec![
            "BUILD ARG".to_string(),
            "VALUE".into(),
            "DESCRIPTION".into(),
        ]];
        for a in &o.args {
            rows.push(vec![a.name.clone(), a.value.clone(), a.description.clone()]);
        }
        out.push_str(&tabwrite(&rows, 3));
        out.push('\n');
    }
    if !o.cache.is_empty() {
        let mut rows = vec![vec!["CACHE MOUNT".to_string()]];
        rows.extend(o.cache.iter().map(|c| vec![c.id.clone()]));
        out.push_str(&tabwrite(&rows, 3));
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// helpers

/// Parse the stack; parse errors fail like a build does (with the location for buildx).
fn parse_stack(file: &SourceFile) -> Result<Stack, Failure> {
    let (stack, diags) = llb_gen::stack::parse(file);
    if diags.has_errors() {
        let mut d = diags;
        d.extend(plan::check_stack(&stack));
        return Err(stack_failure(file, d));
    }
    Ok(stack)
}

fn stack_failure(file: &SourceFile, diagnostics: Diagnostics) -> Failure {
    Failure::from_stack(&StackError {
        file: file.clone(),
        diagnostics: diagnostics.sorted(),
    })
}

/// The lines the spans cover (one range, first to last line), in source 0.
fn location(file: &SourceFile, spans: &[Span]) -> Location {
    let joined = spans.iter().copied().reduce(Span::join).unwrap_or_default();
    let (first, last) = file.line_range(joined);
    Location {
        source_index: 0,
        ranges: vec![Range {
            start: Position {
                line: first as i32,
                character: 0,
            },
            end: Position {
                line: last as i32,
                character: 0,
            },
        }],
    }
}

/// Go's text/tabwriter with minwidth 0, tabwidth 0, padchar ' ', no flags: every cell but a
/// row's last is a column cell, padded to the widest cell of its column plus `padding`; the
/// last cell is written as is. (All rows here have the same number of cells, so each column
/// is one block.)
fn tabwrite(rows: &[Vec<String>], padding: usize) -> String {
    let mut widths: Vec<usize> = vec![];
    for row in rows {
        for (i, cell) in row.iter().take(row.len().saturating_sub(1)).enumerate() {
            let w = cell.chars().count() + padding;
            match widths.get_mut(i) {
                Some(x) => *x = (*x).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let n = row.len();
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < n {
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
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
    fn describe_lists_three_requests() {
        let r = call(REQUEST_DESCRIBE, &[], STACK);
        let v = json(&r);
        let names: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, [REQUEST_OUTLINE, REQUEST_TARGETS, REQUEST_DESCRIBE]);
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
        assert!(v[2]["opts"].is_null());
        assert_eq!(
            v[2]["description"],
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
        for req in ["frontend.lint", "frontend.convertllb", "frontend.whatever"] {
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
}
