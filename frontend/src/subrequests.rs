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
//! `frontend.lint` (`--check`, `--call=check`) is answered by `crate::lint` (it reads the
//! context through the gateway); it is listed here by describe.
//!
//! # Requests we do not answer (`frontend.convertllb`, …)
//!
//! They fail with an error that must not read "unsupported request frontend.X": buildx (from
//! v0.14; `fallbackPrintError` in `build/build.go`) matches that text for `frontend.outline`,
//! `frontend.targets` and `frontend.lint` and then re-runs the request with
//! `BUILDKIT_SYNTAX` set to the Dockerfile frontend, which would parse stack.toml as a
//! Dockerfile and print nonsense. BuildKit's typed `errdefs.UnsupportedSubrequestError` has the
//! same effect, so we never send it either. buildx 0.29 sends `frontend.<name>` for any
//! `--call=<name>`; the names it knows are outline, targets, lint (`check`) and
//! subrequests.describe, all answered.
//!
//! buildx v0.13 has no lint at all: only the experimental `--print=<name>`
//! (`BUILDX_EXPERIMENTAL=1`, requestid `frontend.<name>`), which falls back to
//! `docker/dockerfile:1.5.2-labs` only on a *typed* unsupported-subrequest error for outline or
//! targets. buildx v0.14 added `--print=lint` (experimental) with a lint fallback image; v0.15
//! made `--call=check|outline|targets` and `--check` (= `--call=check`, sent as
//! `requestid=frontend.lint`) regular flags.

use std::collections::BTreeSet;

use llb_gen::diag::{Diagnostics, StackError};
use llb_gen::plan::{self, Plan};
use llb_gen::source::{SourceFile, Span};
use llb_gen::stack::{ImageDef, Stack};
use serde::Serialize;

use crate::gateway::{ResultBuilder, base64_std};
use crate::opts::FrontendOpts;
use crate::request::{Failure, Inputs};

/// `frontend.subrequests.describe`: the list of supported subrequests.
pub const REQUEST_DESCRIBE: &str = "frontend.subrequests.describe";
/// `frontend.outline`: the parameters (args, cache mounts) of one target.
pub const REQUEST_OUTLINE: &str = "frontend.outline";
/// `frontend.targets`: every layer and service.
pub const REQUEST_TARGETS: &str = "frontend.targets";
/// `frontend.lock` (`--call lock`): the locks the build's resolve steps write, printed. Answered
/// by the build (it solves the resolve steps), not here.
pub const REQUEST_LOCK: &str = "frontend.lock";

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
    let supported = [
        REQUEST_DESCRIBE,
        REQUEST_OUTLINE,
        REQUEST_TARGETS,
        crate::lint::REQUEST_LINT,
        REQUEST_LOCK,
    ]
    .join(", ");
    format!("layerstack does not implement `{req}`; supported: {supported}")
}

/// Metadata-only result: `result.json`, `result.txt`, `version`.
pub(crate) fn respond<T: Serialize>(value: &T, txt: String) -> Result<ResultBuilder, Failure> {
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
#[derive(Debug, Clone, Serialize)]
struct Named {
    name: &'static str,
    description: &'static str,
}

/// `pb.Location`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Location {
    #[serde(rename = "sourceIndex", skip_serializing_if = "is_zero")]
    pub(crate) source_index: i32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) ranges: Vec<Range>,
}

/// `pb.Range`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Range {
    pub(crate) start: Position,
    pub(crate) end: Position,
}

/// `pb.Position`: 1-based line; character 0 (whole lines, as the Dockerfile frontend).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Position {
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) line: i32,
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) character: i32,
}

pub(crate) fn is_zero(n: &i32) -> bool {
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
    /// Ours, not upstream's: the lock files the target's images install from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locks: Vec<LockRead>,
}

/// A lock file a build reads from the context before planning. Its wheels need no cache
/// mount: each is an `llb.HTTP` source that BuildKit keeps by its sha256, and the installs are
/// ordinary layers, so a CI cache needs the lock file and the exported cache (`--cache-to`).
#[derive(Debug, Serialize)]
struct LockRead {
    file: String,
    /// How the wheels are cached (`http sources, cached by sha256`).
    wheels: &'static str,
    #[serde(rename = "authSecret", skip_serializing_if = "Option::is_none")]
    auth_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
}

const LOCK_WHEELS: &str = "http sources, cached by sha256";

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
/// targets, then describe itself; lint, which upstream answers but does not list, before
/// describe), each exactly as upstream defines it.
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
            name: crate::lint::REQUEST_LINT,
            version: crate::lint::VERSION,
            kind: "rpc",
            description: crate::lint::DESCRIPTION,
            opts: Some(vec![]),
            inputs: None,
            metadata: Some(vec![
                RESULT_METADATA[0].clone(),
                RESULT_METADATA[1].clone(),
                Named {
                    name: "result.statuscode",
                    description: "",
                },
            ]),
            refs: None,
        },
        Request {
            name: REQUEST_LOCK,
            version: VERSION,
            kind: "rpc",
            description: "Print the pylock.toml each resolve step writes for the target (foreign platforms)",
            opts: Some(vec![Named {
                name: "target",
                description: "Target build stage",
            }]),
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
    // One listing with `llb-gen targets`: services, layers, then `NAME@VARIANT` for every
    // service in every variant.
    let targets = llb_gen::report::targets::list(&stack)
        .into_iter()
        .map(|t| {
            let (description, platform) = match &t.variant {
                None => (
                    {
                        let kind = match t.build_only {
                            true => format!("{} (build-only)", t.kind.as_str()),
                            false => t.kind.as_str().to_string(),
                        };
                        if t.description.is_empty() {
                            kind
                        } else {
                            format!("{kind}: {}", t.description)
                        }
                    },
                    // Images do not pin a platform; the build's platforms come from
                    // --platform or `stack.platforms`.
                    String::new(),
                ),
                Some(v) => {
                    let what = v
                        .description
                        .clone()
                        .unwrap_or_else(|| format!("variant {}", v.name));
                    (
                        format!("service {} in variant {}: {what}", t.image, v.name),
                        v.platforms.join(","),
                    )
                }
            };
            Target {
                name: t.name,
                default: t.default,
                description,
                base: t.base,
                platform,
                location: Some(location(file, &[t.span])),
            }
        })
        .collect();
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
    let stack_platforms = crate::request::stack_platforms(opts, &stack);
    let platforms = crate::request::platforms(opts, &stack_platforms)?;

    let mut first: Option<(Plan, std::collections::BTreeMap<String, String>)> = None;
    let mut cache: Vec<CacheMount> = vec![];
    let mut locks: Vec<LockRead> = vec![];
    let mut seen = BTreeSet::new();
    for platform in platforms {
        let bo = crate::request::build_options(opts, inputs, platform);
        let (_, plan) = llb_gen::load(file, &bo).map_err(|e| Failure::from_stack(&e))?;
        // The plan's caches (apt, pip, uv, conda; ids namespaced by platform and variant),
        // located at the first line of the step that first uses each.
        for c in plan.caches() {
            if seen.insert(c.id.clone()) {
                let line = file.line_span(file.line_col(c.span.start).line);
                cache.push(CacheMount {
                    id: c.id,
                    location: Some(location(file, &[line])),
                });
            }
        }
        // The lock steps of the target's images (the files, not read here: no groups).
        for img in &plan.images {
            for st in &img.steps {
                if let plan::StepKind::Lock(l) = &st.kind
                    && seen.insert(format!("lock\0{}", l.file))
                {
                    let line = file.line_span(file.line_col(st.span.start).line);
                    locks.push(LockRead {
                        file: l.file.clone(),
                        wheels: LOCK_WHEELS,
                        auth_secret: l.auth_secret.clone(),
                        location: Some(location(file, &[line])),
                    });
                }
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
        locks,
    })
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
    if !o.locks.is_empty() {
        let mut rows = vec![vec![
            "LOCK FILE".to_string(),
            "WHEELS".into(),
            "AUTH SECRET".into(),
        ]];
        rows.extend(o.locks.iter().map(|l| {
            vec![
                l.file.clone(),
                l.wheels.to_string(),
                l.auth_secret.clone().unwrap_or_default(),
            ]
        }));
        out.push_str(&tabwrite(&rows, 3));
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// helpers

/// Parse the stack; parse errors fail like a build does (with the location for buildx).
fn parse_stack(file: &SourceFile) -> Result<Stack, Failure> {
    llb_gen::parse_checked(file)
        .map(|(stack, _)| stack)
        .map_err(|e| Failure::from_stack(&e))
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
#[path = "subrequests_tests.rs"]
mod tests;
