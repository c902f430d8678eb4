//! `fuzz-frontend`: fuzzes what the frontend does with a request before it builds — parsing
//! the gateway's frontend options (`FrontendOpts::from_opts`: build args, platforms, target,
//! network, `context:NAME`, labels, cache options, …) and answering every subrequest it
//! implements (describe, targets, outline, and lint through `lint::results`/`respond`) — on
//! mutated stacks with mutated options (half of them grown from the option sets of
//! `fuzz/corpus/frontend/*.opts`). Stable Rust, coverage-free, in-process under
//! `catch_unwind`; see `fuzz/README.md`.
//!
//! ```text
//! fuzz-frontend [--seconds N] [--seed S] [--crashes DIR] [--opts-corpus DIR]
//! ```
//!
//! Invariants (a failure is a panic whose message starts with `invariant:`):
//! * no panic in option parsing or any answer;
//! * every answer's `result.json` is JSON and `result.txt` is UTF-8, each under 16 MiB;
//! * a rejected option set is an error that names one of the options given, shows values
//!   escaped (no control characters, no bidi overrides) and is at most 4 KiB;
//! * a lint answer's `result.statuscode` is `0` exactly when there are no warnings and no
//!   error.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use layerstack_frontend::opts::FrontendOpts;
use layerstack_frontend::request::Inputs;
use layerstack_frontend::{lint, subrequests};
use layerstack_fuzz::{Mutator, Rng, default_seed_paths, repo_root};
use llb_gen::source::SourceFile;

/// Option keys the gateway sends (upstream's dockerui names), prefixes completed with a name.
const KEYS: &[&str] = &[
    "target",
    "platform",
    "filename",
    "dockerfilekey",
    "contextkey",
    "force-network-mode",
    "image-resolve-mode",
    "add-hosts",
    "hostname",
    "no-cache",
    "cache-from",
    "cache-imports",
    "multi-platform",
    "requestid",
    "build-arg:",
    "build-arg:BUILDKIT_MULTI_PLATFORM",
    "build-arg:BUILDKIT_SANDBOX_HOSTNAME",
    "build-arg:SOURCE_DATE_EPOCH",
    "build-arg:LAYERSTACK_CROSS",
    "build-arg:LAYERSTACK_MERGE",
    "build-arg:BUILDKIT_SYNTAX",
    "context:",
    "label:",
    "local-sessionid:",
    "attest:sbom",
    "attest:provenance",
];

/// Values worth trying, besides mutated ones.
const VALUES: &[&str] = &[
    "",
    "api",
    "app@cpu",
    "linux/amd64",
    "linux/arm64,linux/amd64",
    "linux/arm/v7",
    "windows/amd64",
    "host",
    "none",
    "sandbox",
    "pull",
    "local",
    "true",
    "false",
    "1",
    "0",
    "-1",
    "99999999999999999999",
    "253402300800",
    "docker-image://debian:bookworm-slim",
    "docker-image://python:3.12-slim@sha256:0123",
    "local:svc-api",
    "input:other",
    "oci-layout://store@sha256:00",
    "https://example.invalid/x.tar",
    "git://h/r.git",
    "h1=127.0.0.1,h2=::1",
    "x; touch /pwned",
    "${A}${A}${A}",
    "[{\"Type\":\"registry\",\"Attrs\":{\"ref\":\"r\"}}]",
    "frontend.outline",
    "frontend.targets",
    "frontend.lint",
    "subrequests.describe",
    "\u{0}",
    "é\u{202e}",
];

/// Subrequests `subrequests::answer` implements.
const REQUESTS: &[&str] = &[
    "subrequests.describe",
    "frontend.targets",
    "frontend.outline",
    "frontend.unknown",
];

const MAX_ANSWER: usize = 16 << 20;

fn word(rng: &mut Rng, mutator: &mut Mutator) -> String {
    let base = rng.pick(VALUES).to_string();
    if rng.chance(3) {
        let other = rng.pick(VALUES).to_string();
        String::from_utf8_lossy(&mutator.mutate(base.as_bytes(), other.as_bytes())).into_owned()
    } else {
        base
    }
}

fn options(rng: &mut Rng, mutator: &mut Mutator) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for _ in 0..rng.below(8) {
        let mut key = rng.pick(KEYS).to_string();
        if key.ends_with(':') {
            key.push_str(&word(rng, mutator).chars().take(40).collect::<String>());
        }
        let value = word(rng, mutator);
        m.insert(key, value);
    }
    m
}

/// One option set of the corpus (`fuzz/corpus/frontend/*.opts`): `key=value` lines split at
/// the first `=`, `#` lines and blank lines skipped; in keys and values `\n`, `\r`, `\t`,
/// `\0`, `\\` and `\u{HEX}` are escapes.
fn parse_opts_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (unescape(k), unescape(v))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('u') if chars.peek() == Some(&'{') => {
                chars.next();
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => out.push_str(&format!("\\u{{{hex}}}")),
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The option sets of a corpus directory, in file-name order.
fn load_opts_corpus(dir: &std::path::Path) -> Vec<BTreeMap<String, String>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "opts"))
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| parse_opts_file(&t))
        .collect()
}

/// A corpus option set with 0 to 3 edits: a value replaced, an option added or removed, or the
/// options of another set merged in.
fn grow(
    corpus: &[BTreeMap<String, String>],
    rng: &mut Rng,
    mutator: &mut Mutator,
) -> BTreeMap<String, String> {
    let mut m = rng.pick(corpus).clone();
    for _ in 0..rng.below(4) {
        match rng.below(4) {
            0 if !m.is_empty() => {
                let k = m
                    .keys()
                    .nth(rng.below(m.len()))
                    .cloned()
                    .unwrap_or_default();
                let v = word(rng, mutator);
                m.insert(k, v);
            }
            1 if !m.is_empty() => {
                let k = m
                    .keys()
                    .nth(rng.below(m.len()))
                    .cloned()
                    .unwrap_or_default();
                m.remove(&k);
            }
            2 => m.extend(rng.pick(corpus).clone()),
            _ => m.extend(options(rng, mutator).into_iter().take(1)),
        }
    }
    m
}

/// One request: returns what was checked (`rejected`, `answered`, `linted`), or panics on a broken invariant.
fn run_one(stack: &str, opts: &BTreeMap<String, String>) -> &'static str {
    let parsed = match FrontendOpts::from_opts(opts) {
        Ok(o) => o,
        Err(e) => {
            let msg = e.to_string();
            assert!(
                !msg.trim().is_empty(),
                "invariant: an option error says nothing for {opts:?}"
            );
            assert!(
                is_escaped(&msg),
                "invariant: the option error {msg:?} shows a value unescaped"
            );
            assert!(
                msg.len() <= MAX_OPTION_ERROR,
                "invariant: an option error of {} bytes",
                msg.len()
            );
            assert!(
                names_an_option(&msg, opts),
                "invariant: the option error {msg:?} names none of the options {:?}",
                opts.keys().collect::<Vec<_>>()
            );
            return "rejected";
        }
    };
    let inputs = Inputs {
        file: SourceFile::new("stack.toml", stack),
        exclude_patterns: vec![],
        named_contexts: Default::default(),
        file_vertex: String::new(),
    };
    for req in REQUESTS {
        if let Ok(r) = subrequests::answer(req, &parsed, &inputs) {
            check_answer(req, &r.metadata);
        }
    }
    // The lint answer as `--call check` gets it (facts about the context left empty).
    if let Ok((stack_model, _)) = llb_gen::parse_checked(&inputs.file) {
        let platform = llb_gen::platform::Platform::linux_amd64();
        let mut bo = layerstack_frontend::request::build_options(&parsed, &inputs, platform);
        bo.target = None;
        let plans = llb_gen::lint::plans(&stack_model, &bo);
        let findings = llb_gen::lint::lint(&stack_model, &plans, &Default::default());
        let diags = llb_gen::check(&inputs.file, &bo);
        let results = lint::results(&inputs.file, &findings, &diags);
        if let Ok(r) = lint::respond(&results, &inputs.file) {
            check_answer("frontend.lint", &r.metadata);
            let status = r.metadata.get("result.statuscode").map(|v| v.as_slice());
            let clean = findings.is_empty() && !diags.has_errors();
            assert!(
                (status == Some(b"0")) == clean,
                "invariant: lint status {status:?} but clean={clean}"
            );
        }
        return "linted";
    }
    "answered"
}

/// Whether an option error names the option it is about: one of the keys given, or either
/// part of a prefixed one (`build-arg` or `SOURCE_DATE_EPOCH` of `build-arg:SOURCE_DATE_EPOCH`).
fn names_an_option(msg: &str, opts: &BTreeMap<String, String>) -> bool {
    opts.keys().any(|k| {
        (!k.is_empty() && msg.contains(k.as_str()))
            || k.split_once(':').is_some_and(|(prefix, name)| {
                (!prefix.is_empty() && msg.contains(prefix))
                    || (name.len() > 2 && msg.contains(name))
            })
    })
}

/// Whether a message shows its values escaped: no control characters (a newline would break
/// the one-line error) and no bidi overrides (which can make text read differently).
fn is_escaped(msg: &str) -> bool {
    !msg.chars().any(|c| {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    })
}

/// The longest option error: values are shown cut short.
const MAX_OPTION_ERROR: usize = 4096;

fn check_answer(req: &str, metadata: &BTreeMap<String, Vec<u8>>) {
    if let Some(json) = metadata.get("result.json") {
        assert!(
            json.len() < MAX_ANSWER,
            "invariant: {req}: result.json is {} bytes",
            json.len()
        );
        assert!(
            serde_json::from_slice::<serde_json::Value>(json).is_ok(),
            "invariant: {req}: result.json is not JSON"
        );
    }
    if let Some(txt) = metadata.get("result.txt") {
        assert!(
            txt.len() < MAX_ANSWER,
            "invariant: {req}: result.txt too big"
        );
        assert!(
            std::str::from_utf8(txt).is_ok(),
            "invariant: {req}: result.txt is not UTF-8"
        );
    }
}

fn main() -> ExitCode {
    let mut seconds = 60u64;
    let mut seed = 1u64;
    let mut crashes = repo_root().join("fuzz/crashes");
    let mut opts_corpus = repo_root().join("fuzz/corpus/frontend");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} wants a number"))
        };
        match a.as_str() {
            "--seconds" => seconds = num("--seconds"),
            "--seed" => seed = num("--seed"),
            "--crashes" => crashes = PathBuf::from(args.next().expect("--crashes DIR")),
            "--opts-corpus" => opts_corpus = PathBuf::from(args.next().expect("--opts-corpus DIR")),
            other => {
                eprintln!("fuzz-frontend: unknown argument {other}");
                return ExitCode::from(2);
            }
        }
    }
    let seeds: Vec<String> = default_seed_paths()
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    if seeds.is_empty() {
        eprintln!("fuzz-frontend: no seed stacks found");
        return ExitCode::from(2);
    }
    let corpus = load_opts_corpus(&opts_corpus);
    eprintln!(
        "fuzz-frontend: {} seed stacks, {} option sets from {}",
        seeds.len(),
        corpus.len(),
        opts_corpus.display()
    );
    // Quiet panics: each one is reported below with its input.
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng::new(seed);
    let mut mutator = Mutator::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut runs, mut rejected, mut answered, mut linted, mut failures) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        let parent = rng.pick(&seeds).clone();
        let stack = if rng.chance(4) {
            parent
        } else {
            let other = rng.pick(&seeds).clone();
            String::from_utf8_lossy(&mutator.mutate(parent.as_bytes(), other.as_bytes()))
                .into_owned()
        };
        let opts = if !corpus.is_empty() && rng.chance(2) {
            grow(&corpus, &mut rng, &mut mutator)
        } else {
            options(&mut rng, &mut mutator)
        };
        runs += 1;
        match catch_unwind(AssertUnwindSafe(|| run_one(&stack, &opts))) {
            Ok("rejected") => rejected += 1,
            Ok("linted") => linted += 1,
            Ok(_) => answered += 1,
            Err(p) => {
                failures += 1;
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let _ = std::fs::create_dir_all(&crashes);
                let path = crashes.join(format!("frontend-{seed}-{runs}.txt"));
                let body = format!("# {msg}\n# opts: {opts:?}\n{stack}");
                let _ = std::fs::write(&path, body);
                eprintln!(
                    "fuzz-frontend: FAILURE ({msg}); input in {}",
                    path.display()
                );
            }
        }
    }
    println!(
        "fuzz-frontend: {runs} requests in {seconds} s (options rejected {rejected}; answered on a stack that does not parse {answered}, on one that parses, lint included, {linted}), {failures} failures"
    );
    if failures > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_files_parse_with_escapes() {
        let m = parse_opts_file("# c\n\nbuild-arg:A=x=y\\n\\u{202e}\\0\\\\\ntarget\n");
        assert_eq!(m["build-arg:A"], "x=y\n\u{202e}\0\\");
        assert_eq!(m["target"], "");
        assert_eq!(unescape("\\u{zz}"), "\\u{zz}");
    }

    /// Every option set of the committed corpus, on the fuzzer's own seed stacks and the
    /// examples, passes every invariant.
    #[test]
    fn the_committed_corpus_keeps_every_invariant() {
        let corpus = load_opts_corpus(&repo_root().join("fuzz/corpus/frontend"));
        assert!(corpus.len() >= 30, "{} option sets", corpus.len());
        let stacks: Vec<String> = default_seed_paths()
            .iter()
            .filter(|p| !p.to_string_lossy().contains("tests/invalid"))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect();
        assert!(stacks.len() > 3);
        let mut outcomes = BTreeMap::new();
        for opts in &corpus {
            for stack in &stacks {
                *outcomes.entry(run_one(stack, opts)).or_insert(0) += 1;
            }
        }
        // The corpus reaches every path: rejected options, answers, lint.
        assert!(
            outcomes.contains_key("rejected") && outcomes.contains_key("linted"),
            "{outcomes:?}"
        );
    }
}
