//! `frontend.lint` (`docker buildx build --check` / `--call=check`): the stack's lint findings
//! in BuildKit's `lint.LintResults` shape (moby/buildkit `frontend/subrequests/lint/lint.go`),
//! which buildx decodes and prints (`WARNING: Rule - URL`, the detail, the stack.toml excerpt)
//! and whose `result.statuscode` (1 with any warning or a build error) is buildx's exit status.
//!
//! A stack that cannot be built answers with `buildError` (message and location), as the
//! Dockerfile frontend does for a Dockerfile that does not convert: buildx prints it after
//! the warnings and fails. The rules are `llb_gen::lint`'s; this module only gathers the facts
//! about the context they need through the gateway: the requirements files (read from a
//! `local` source restricted to them) and, without a `.dockerignore`, whether copied
//! directories hold `.git`, `.venv`, `node_modules`… (a `local` source restricted to those
//! directory entries, their contents excluded, so nothing large is transferred). Sizes are
//! not known here (that would mean sending the context); `llb-gen check` knows them.

use std::collections::BTreeMap;

use llb_gen::diag::Severity;
use llb_gen::lint::{self, DirFacts, Facts, Finding, HEAVY_DIRS};
use llb_gen::llb::{Graph, VertexMeta};
use llb_gen::plan;
use llb_gen::source::{SourceFile, Span};
use serde::Serialize;

use crate::gateway::{Gateway, ResultBuilder, base64_std};
use crate::opts::FrontendOpts;
use crate::request::{Failure, Inputs};
use crate::subrequests::{Location, Position, Range};

/// The request id buildx sends for `--check` / `--call=check`.
pub const REQUEST_LINT: &str = "frontend.lint";
/// `SubrequestLintDefinition.Version`.
pub const VERSION: &str = "1.0.0";
/// `SubrequestLintDefinition.Description`, as upstream (buildx shows it in `--call=subrequests.describe`).
pub const DESCRIPTION: &str = "Lint a Dockerfile";

/// `lint.LintResults`.
#[derive(Debug, Serialize)]
pub struct LintResults {
    warnings: Vec<Warning>,
    sources: Vec<SourceInfo>,
    #[serde(rename = "buildError", skip_serializing_if = "Option::is_none")]
    error: Option<BuildError>,
}

/// `lint.Warning`.
#[derive(Debug, Serialize)]
struct Warning {
    #[serde(rename = "ruleName")]
    rule_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    detail: String,
    location: Location,
}

/// `lint.BuildError` (its location is a value, not a pointer: always written).
#[derive(Debug, Serialize)]
struct BuildError {
    message: String,
    location: Location,
}

/// `pb.SourceInfo` as Go's encoding/json writes it (`data` is `[]byte`: base64).
#[derive(Debug, Serialize)]
struct SourceInfo {
    #[serde(skip_serializing_if = "String::is_empty")]
    filename: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    data: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    language: String,
}

/// Whole lines of one span, in source 0 (character 0, as the Dockerfile frontend's ranges
/// print).
fn location(file: &SourceFile, span: Option<Span>) -> Location {
    let Some(span) = span else {
        return Location {
            source_index: 0,
            ranges: vec![],
        };
    };
    let (first, last) = file.line_range(span);
    let pos = |l: usize| Position {
        line: l as i32,
        character: 0,
    };
    Location {
        source_index: 0,
        ranges: vec![Range {
            start: pos(first),
            end: pos(last),
        }],
    }
}

/// The results for these findings and the stack's errors (`check`'s diagnostics).
pub fn results(
    file: &SourceFile,
    findings: &[Finding],
    diagnostics: &llb_gen::diag::Diagnostics,
) -> LintResults {
    let warnings = findings
        .iter()
        .map(|f| Warning {
            rule_name: f.rule.name.to_string(),
            description: f.rule.description.to_string(),
            url: f.rule.url(),
            detail: f.detail.clone(),
            location: location(file, Some(f.span)),
        })
        .collect();
    let errors: Vec<&llb_gen::diag::Diagnostic> = diagnostics
        .items
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    let error = errors.first().map(|first| BuildError {
        message: errors
            .iter()
            .map(|d| d.one_line(file))
            .collect::<Vec<_>>()
            .join("\n"),
        location: location(file, first.span),
    });
    LintResults {
        warnings,
        sources: vec![SourceInfo {
            filename: file.name.clone(),
            data: base64_std(file.text.as_bytes()),
            language: "toml".into(),
        }],
        error,
    }
}

/// `LintResults.ToResult`: `result.json`, `result.txt`, `result.statuscode`, `version`.
pub fn respond(r: &LintResults, file: &SourceFile) -> Result<ResultBuilder, Failure> {
    let json = serde_json::to_vec_pretty(r)
        .map_err(|e| Failure::plain(format!("cannot encode the lint result: {e}")))?;
    let status = if r.warnings.is_empty() && r.error.is_none() {
        "0"
    } else {
        "1"
    };
    let mut b = ResultBuilder::new();
    b.add_metadata("result.json", json);
    b.add_metadata("result.txt", print(r, file).into_bytes());
    b.add_metadata("result.statuscode", status.as_bytes().to_vec());
    b.add_metadata("version", VERSION.as_bytes().to_vec());
    Ok(b)
}

/// As `LintResults.PrintTo` (warnings sorted by line) followed by `PrintErrorTo`.
fn print(r: &LintResults, file: &SourceFile) -> String {
    let mut ws: Vec<&Warning> = r.warnings.iter().collect();
    ws.sort_by_key(|w| w.location.ranges.first().map(|x| x.start.line));
    let mut out = String::new();
    for w in ws {
        out.push_str(&format!("\nWARNING: {}", w.rule_name));
        if !w.url.is_empty() {
            out.push_str(&format!(" - {}", w.url));
        }
        out.push_str(&format!("\n{}\n", w.detail));
        out.push_str(&excerpt(file, &w.location));
    }
    if let Some(e) = &r.error {
        out.push_str(&e.message);
        out.push('\n');
        out.push_str(&excerpt(file, &e.location));
    }
    out
}

/// `errdefs.Source.Print`: the lines of the ranges with context, marked `>>>`.
fn excerpt(file: &SourceFile, loc: &Location) -> String {
    let lines: Vec<&str> = file.text.split('\n').collect();
    let Some(first) = loc.ranges.iter().map(|r| r.start.line).min() else {
        return String::new();
    };
    let last = loc
        .ranges
        .iter()
        .map(|r| r.end.line.max(r.start.line))
        .max()
        .unwrap_or(first);
    let n = lines.len() as i32;
    if first > n || first < 1 {
        return String::new();
    }
    let (mut start, mut end) = (first, last.min(n));
    let pad = if end == start { 4 } else { 2 };
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != n {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    let mut out = format!("{}:{first}\n--------------------\n", file.name);
    for i in start..=end {
        let marked = loc
            .ranges
            .iter()
            .any(|r| r.start.line <= i && r.end.line.max(r.start.line) >= i);
        let pfx = if marked { ">>>" } else { "   " };
        out.push_str(&format!(" {i:>3} | {pfx} {}\n", lines[(i - 1) as usize]));
    }
    out.push_str("--------------------\n");
    out
}

/// Answer `frontend.lint`: every target (or only `--target`'s builds) in every variant and
/// platform, as `llb-gen check`, with facts about the context read through the gateway.
pub async fn answer(
    gw: &Gateway,
    opts: &FrontendOpts,
    inputs: &Inputs,
) -> Result<ResultBuilder, Failure> {
    let file = &inputs.file;
    let platform = match opts.platforms.first() {
        Some(p) => llb_gen::platform::Platform::parse(p)
            .map_err(|e| Failure::plain(format!("--platform: {e}")))?,
        None => opts
            .worker_platforms
            .first()
            .and_then(|p| llb_gen::platform::Platform::parse(p).ok())
            .unwrap_or_else(llb_gen::platform::Platform::linux_amd64),
    };
    let mut bo = crate::request::build_options(opts, inputs, platform);
    bo.target = None;
    bo.requirement_includes = requirement_includes(gw, inputs, &bo).await?;
    bo.lock_files = lock_files(gw, inputs, &bo).await?;
    bo.index_pages = crate::index_pages::fetch(gw, inputs, &bo.lock_files).await?;
    let diagnostics = llb_gen::check(file, &bo);
    // A stack that does not parse: only the build error (`check` has the parse errors).
    let Ok((stack, _)) = llb_gen::parse_checked(file) else {
        return respond(&results(file, &[], &diagnostics), file);
    };
    let mut plans = lint::plans(&stack, &bo);
    if let Some(t) = opts.target.as_deref().filter(|t| !t.is_empty()) {
        let (name, variant) = plan::split_target(t);
        plans
            .retain(|p| p.target == name && (variant.is_none() || p.variant.as_deref() == variant));
    }
    let wanted = lint::wanted(&plans);
    let mut facts = Facts {
        dockerignore: !inputs.exclude_patterns.is_empty(),
        network: bo.network,
        ..Facts::default()
    };
    facts.files = read_files(
        gw,
        &bo,
        wanted.files.iter().cloned().collect(),
        "[internal] load requirements for lint",
    )
    .await?;
    if !facts.dockerignore {
        // Named contexts have their own .dockerignore: only the main context's copies.
        let copies = wanted
            .copies
            .iter()
            .filter(|c| plan::ctxpath::context_of(c).is_none())
            .cloned()
            .collect();
        facts.dirs = heavy_dirs(gw, &bo.context, copies).await?;
    }
    let findings = lint::lint(&stack, &plans, &facts);
    respond(&results(file, &findings, &diagnostics), file)
}

/// Solve a `local` source of a context (the main one or a named one) with these
/// attributes; its ref.
async fn load_context(
    gw: &Gateway,
    ctx: &plan::ContextOptions,
    mut attrs: BTreeMap<String, String>,
    display: &str,
) -> Result<String, Failure> {
    if !ctx.session_id.is_empty() {
        attrs.insert("local.session".into(), ctx.session_id.clone());
    }
    let mut g = Graph::new();
    let out = g.local(
        &ctx.name,
        attrs,
        VertexMeta {
            name: display.to_string(),
            ..Default::default()
        },
    );
    Ok(gw.solve(g.marshal(out, None)).await?)
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).expect("strings encode")
}

/// What the requirements files of every target (every variant) include (`-r`, `-c`), read
/// through the gateway round by round ([`plan::includes::gather`]): the planner stages them
/// and reports a missing one at the stack line of the file that includes it.
pub async fn requirement_includes(
    gw: &Gateway,
    inputs: &Inputs,
    bo: &plan::BuildOptions,
) -> Result<plan::includes::RequirementIncludes, Failure> {
    let Ok((stack, _)) = llb_gen::parse_checked(&inputs.file) else {
        return Ok(Default::default());
    };
    let mut roots: Vec<String> = vec![];
    for p in lint::plans(&stack, bo) {
        for r in p.requirement_files() {
            if !roots.contains(&r) {
                roots.push(r);
            }
        }
    }
    if roots.is_empty() {
        return Ok(Default::default());
    }
    let mut files: BTreeMap<String, Option<String>> = BTreeMap::new();
    for _ in 0..plan::includes::MAX_INCLUDE_ROUNDS {
        match plan::includes::gather(&roots, &files) {
            Ok(r) => return Ok(r),
            Err(need) => {
                // A file that cannot be read is the context check's to report (at its
                // stack line); without the files, nothing is added.
                let Ok(found) = read_files(
                    gw,
                    bo,
                    need.clone(),
                    "[internal] load requirements files (for their -r/-c includes)",
                )
                .await
                else {
                    return Ok(Default::default());
                };
                for p in need {
                    let text = found.get(&p).cloned();
                    files.insert(p, text);
                }
            }
        }
    }
    Ok(plan::includes::gather_with(&roots, |p| {
        files.get(p).cloned().unwrap_or(Some(String::new()))
    }))
}

/// The lock files the stack names (`lock = …`, [`plan::locks::lock_paths`]), read through the
/// gateway: a file that cannot be read is None (the planner reports it at its `lock` line).
pub async fn lock_files(
    gw: &Gateway,
    inputs: &Inputs,
    bo: &plan::BuildOptions,
) -> Result<BTreeMap<String, Option<String>>, Failure> {
    let Ok((stack, _)) = llb_gen::parse_checked(&inputs.file) else {
        return Ok(Default::default());
    };
    let paths = plan::locks::lock_paths(&stack);
    if paths.is_empty() {
        return Ok(Default::default());
    }
    let found = read_files(gw, bo, paths.clone(), "[internal] load lock files").await?;
    Ok(paths
        .into_iter()
        .map(|p| {
            let text = found.get(&p).cloned();
            (p, text)
        })
        .collect())
}

/// The requirements files' text (a file that is missing, left out by `.dockerignore` or not
/// UTF-8 is left out: the build reports a missing one at its line).
/// `paths` are plan context paths: a named context's (`//NAME/PATH`) are read from its own
/// local source with its own `.dockerignore`; the result is keyed by the plan paths.
async fn read_files(
    gw: &Gateway,
    bo: &plan::BuildOptions,
    paths: Vec<String>,
    display: &str,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for (context, group) in plan::ctxpath::group(&paths) {
        let ctx = match &context {
            None => bo.context.clone(),
            // A context the build was not given: the planner reports it at its line.
            Some(c) => match bo.named_contexts.get(c) {
                Some(o) => o.clone(),
                None => continue,
            },
        };
        let inner: Vec<String> = group
            .iter()
            .map(|p| plan::ctxpath::split(p).1.to_string())
            .collect();
        let mut attrs = BTreeMap::new();
        attrs.insert("local.includepattern".into(), json_list(&inner));
        attrs.insert("local.followpaths".into(), json_list(&inner));
        if !ctx.exclude_patterns.is_empty() {
            attrs.insert(
                "local.excludepatterns".into(),
                json_list(&ctx.exclude_patterns),
            );
        }
        attrs.insert("local.sharedkeyhint".into(), "layerstack-lint".into());
        let r = load_context(gw, &ctx, attrs, display).await?;
        let reads = inner.iter().map(|p| gw.read_file(&r, p, None));
        for (p, res) in group
            .iter()
            .zip(futures_util::future::join_all(reads).await)
        {
            match res {
                Ok(bytes) => {
                    if let Ok(t) = String::from_utf8(bytes) {
                        out.insert(p.clone(), t);
                    }
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

/// For each copied directory, which of [`HEAVY_DIRS`] it holds: the context restricted to
/// `<dir>/.git`, `<dir>/.venv`, … with everything under them excluded, then a stat of each.
async fn heavy_dirs(
    gw: &Gateway,
    ctx: &plan::ContextOptions,
    copies: Vec<String>,
) -> Result<BTreeMap<String, DirFacts>, Failure> {
    let mut out = BTreeMap::new();
    let mut candidates: Vec<(String, String, String)> = vec![];
    for src in &copies {
        let prefix = if src == "." || src.is_empty() {
            String::new()
        } else {
            format!("{}/", src.trim_end_matches('/'))
        };
        for h in HEAVY_DIRS {
            candidates.push((src.clone(), h.to_string(), format!("{prefix}{h}")));
        }
    }
    if candidates.is_empty() {
        return Ok(out);
    }
    let include: Vec<String> = candidates.iter().map(|c| c.2.clone()).collect();
    let exclude: Vec<String> = include.iter().map(|p| format!("{p}/*")).collect();
    let mut attrs = BTreeMap::new();
    attrs.insert("local.includepattern".into(), json_list(&include));
    attrs.insert("local.excludepatterns".into(), json_list(&exclude));
    attrs.insert("local.sharedkeyhint".into(), "layerstack-lint-dirs".into());
    let r = load_context(
        gw,
        ctx,
        attrs,
        "[internal] look for .git, .venv, node_modules",
    )
    .await?;
    let stats = candidates.iter().map(|c| gw.stat_file(&r, &c.2));
    let stats = futures_util::future::join_all(stats).await;
    for (c, st) in candidates.into_iter().zip(stats) {
        // Go's fs.ModeDir. A failed stat (a copied file, not a directory) is "not there".
        let is_dir = matches!(st, Ok(Some(s)) if s.mode & (1 << 31) != 0);
        if is_dir {
            out.entry(c.0)
                .or_insert_with(DirFacts::default)
                .heavy
                .push(c.1);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const STACK: &str = "# syntax=layerstack:dev\n[layers.base]\nfrom = \"python:3.12-slim\"\npip = [\"numpy==1.26.4\"]\n[services.api]\nfrom = \"base\"\npip = [\"numpy==2.0.1\"]\n";

    fn lint_of(text: &str) -> (SourceFile, LintResults) {
        let file = SourceFile::new("stack.toml", text);
        let (stack, _) = llb_gen::stack::parse(&file);
        let bo = plan::BuildOptions::default();
        let plans = lint::plans(&stack, &bo);
        let findings = lint::lint(&stack, &plans, &Facts::default());
        let diags = llb_gen::check(&file, &bo);
        let r = results(&file, &findings, &diags);
        (file, r)
    }

    fn meta(b: &ResultBuilder, k: &str) -> String {
        String::from_utf8(b.metadata[k].clone()).unwrap()
    }

    #[test]
    fn warnings_in_buildkits_shape() {
        let (file, r) = lint_of(STACK);
        let b = respond(&r, &file).unwrap();
        assert_eq!(meta(&b, "result.statuscode"), "1");
        assert_eq!(meta(&b, "version"), "1.0.0");
        let v: Value = serde_json::from_str(&meta(&b, "result.json")).unwrap();
        let w = &v["warnings"][0];
        assert_eq!(w["ruleName"], "ConflictingPins");
        assert!(
            w["url"]
                .as_str()
                .unwrap()
                .ends_with("stack-toml.md#conflictingpins")
        );
        assert!(
            w["description"]
                .as_str()
                .unwrap()
                .contains("pinned in a base")
        );
        assert!(w["detail"].as_str().unwrap().contains("numpy==2.0.1"));
        assert!(w["location"].get("sourceIndex").is_none(), "omitempty");
        assert_eq!(w["location"]["ranges"][0]["start"]["line"], 7);
        assert_eq!(w["location"]["ranges"][0]["end"]["line"], 7);
        assert_eq!(v["sources"][0]["filename"], "stack.toml");
        assert_eq!(v["sources"][0]["language"], "toml");
        assert_eq!(v["sources"][0]["data"], base64_std(STACK.as_bytes()));
        assert!(v.get("buildError").is_none());
        let txt = meta(&b, "result.txt");
        assert!(
            txt.starts_with("\nWARNING: ConflictingPins - https://"),
            "{txt}"
        );
        assert!(
            txt.contains("stack.toml:7\n--------------------\n"),
            "{txt}"
        );
        assert!(
            txt.contains("   7 | >>> pip = [\"numpy==2.0.1\"]\n"),
            "{txt}"
        );
        // Go's padding: four lines around a one-line range, fewer at the end of the file.
        assert!(txt.contains("   5 |     [services.api]\n"), "{txt}");
        assert!(!txt.contains("   4 |"), "{txt}");
    }

    #[test]
    fn a_clean_stack_answers_status_0() {
        let (file, r) = lint_of(&STACK.replace("numpy==2.0.1", "numpy==1.26.4"));
        let b = respond(&r, &file).unwrap();
        assert_eq!(meta(&b, "result.statuscode"), "0");
        let v: Value = serde_json::from_str(&meta(&b, "result.json")).unwrap();
        assert_eq!(v["warnings"], serde_json::json!([]));
        assert_eq!(meta(&b, "result.txt"), "");
    }

    #[test]
    fn a_stack_error_is_the_build_error() {
        let (file, r) = lint_of(&STACK.replace("from = \"base\"", "from = \"base\"\ntorch = true"));
        let b = respond(&r, &file).unwrap();
        assert_eq!(meta(&b, "result.statuscode"), "1");
        let v: Value = serde_json::from_str(&meta(&b, "result.json")).unwrap();
        let e = &v["buildError"];
        assert!(e["message"].as_str().unwrap().contains("[torch]"), "{e}");
        assert_eq!(e["location"]["ranges"][0]["start"]["line"], 7);
        let txt = meta(&b, "result.txt");
        assert!(txt.contains(">>> torch = true"), "{txt}");
        // api cannot be planned, so its pins are not compared: only the error.
        assert!(
            txt.starts_with("stack.toml:7:9: error: services.api.torch:"),
            "{txt}"
        );
        assert_eq!(v["warnings"], serde_json::json!([]));
    }
}
