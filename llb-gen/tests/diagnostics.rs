//! The invalid-stack corpus: every `tests/invalid/NN-name.toml` must be rejected with located,
//! keyed diagnostics, and `llb_gen::check`'s rendered output must match the file's
//! `NN-name.expected` snapshot (`UPDATE_SNAPSHOTS=1` rewrites the snapshots).
//!
//! The corpus files are checked as `stack.toml`, the name users see. Each file starts with a
//! `# syntax=` line so that the "no syntax directive" warning only shows where it is the point.
//!
//! An input that crashes the checker (a stack overflow aborts this whole test binary) belongs
//! in `fuzz/crashes/` until it is fixed, then here with its snapshot (70 and 71 came that way).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;

use llb_gen::diag::Diagnostics;
use llb_gen::plan::BuildOptions;
use llb_gen::source::SourceFile;

/// Errors about the whole file, which have no place to point at. Their rendering must still
/// name the file (`--> stack.toml`).
const WHOLE_FILE_ERRORS: &[&str] = &["the stack defines no layers and no services"];

/// TOML syntax errors come from the `toml` crate with a span but without a key path.
/// (Listed as a diagnostics gap in the corpus report: the key of the enclosing table could be
/// given.)
const KEYLESS_PREFIX: &str = "invalid TOML:";

/// Corpus entries that are invalid but that `check` accepts today: gaps in the library, kept
/// so that the snapshot records what it prints. When one starts reporting an error, remove it
/// from this list (the test says so).
const KNOWN_SILENT: &[&str] = &[];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `(name, path)` of every `*.toml` directly in `dir`, sorted.
fn tomls(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().to_string(), p))
        .collect();
    out.sort();
    out
}

fn check(text: &str) -> (SourceFile, Diagnostics) {
    let file = SourceFile::new("stack.toml", text);
    let diags = llb_gen::check(&file, &BuildOptions::default());
    (file, diags)
}

/// What `check` says about one corpus entry that breaks the corpus rules (a) and (b).
fn rule_violations(name: &str, file: &SourceFile, diags: &Diagnostics) -> Vec<String> {
    let mut bad = vec![];
    let silent_ok = KNOWN_SILENT.contains(&name);
    match (diags.has_errors(), silent_ok) {
        (false, false) => bad.push(format!("{name}: no error reported")),
        (true, true) => bad.push(format!(
            "{name}: now reports an error; remove it from KNOWN_SILENT"
        )),
        _ => {}
    }
    for d in diags.errors() {
        let line = d.one_line(file);
        let whole_file = WHOLE_FILE_ERRORS.contains(&d.message.as_str());
        match d.span {
            Some(span) => {
                if span.start > span.end || span.end > file.text.len() {
                    bad.push(format!("{name}: span {span:?} outside the file: {line}"));
                }
            }
            None if whole_file => {
                if !d.render(file).contains("--> stack.toml\n") {
                    bad.push(format!(
                        "{name}: whole-file error does not name the file: {line}"
                    ));
                }
            }
            None => bad.push(format!("{name}: error without a span: {line}")),
        }
        if d.key.as_deref().is_none_or(str::is_empty)
            && !whole_file
            && !d.message.starts_with(KEYLESS_PREFIX)
        {
            bad.push(format!("{name}: error without a key path: {line}"));
        }
    }
    bad
}

#[test]
fn corpus_is_large_and_numbered() {
    let files = tomls(&corpus_dir());
    assert!(files.len() >= 45, "only {} corpus files", files.len());
    for (name, _) in &files {
        let (num, rest) = name.split_once('-').unwrap_or(("", ""));
        assert!(
            num.len() == 2 && num.chars().all(|c| c.is_ascii_digit()) && !rest.is_empty(),
            "{name}: corpus files are named NN-name.toml"
        );
    }
    let mut nums: Vec<&str> = files.iter().map(|(n, _)| &n[..2]).collect();
    nums.dedup();
    assert_eq!(nums.len(), files.len(), "two corpus files share a number");
}

#[test]
fn every_invalid_stack_is_reported_with_span_key_and_snapshot() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failures = vec![];
    let mut count = 0;
    for (name, path) in tomls(&corpus_dir()) {
        count += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        // (d) no panic, in check nor in loading any target (or the default one).
        let run = catch_unwind(AssertUnwindSafe(|| {
            let (file, diags) = check(&text);
            let (stack, _) = llb_gen::stack::parse(&file);
            let mut targets: Vec<Option<String>> = vec![None];
            targets.extend(stack.images.iter().map(|i| Some(i.name.value.clone())));
            for target in targets {
                let opts = BuildOptions {
                    target,
                    ..BuildOptions::default()
                };
                if let Err(e) = llb_gen::load(&file, &opts) {
                    let _ = e.diagnostics.render(&e.file);
                    let _ = e.to_string();
                }
            }
            (file, diags)
        }));
        let (file, diags) = match run {
            Ok(r) => r,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{name}: panicked: {msg}"));
                continue;
            }
        };
        // (a) and (b).
        failures.extend(rule_violations(&name, &file, &diags));
        // (c) the rendered diagnostics match the snapshot.
        let rendered = diags.render(&file);
        let snap = path.with_extension("expected");
        if update {
            std::fs::write(&snap, &rendered).unwrap();
            continue;
        }
        match std::fs::read_to_string(&snap) {
            Ok(want) if want == rendered => {}
            Ok(want) => failures.push(format!(
                "{name}: rendered diagnostics differ from {} (UPDATE_SNAPSHOTS=1 rewrites)\n--- want\n{want}--- got\n{rendered}",
                snap.display()
            )),
            Err(_) => failures.push(format!(
                "{name}: no snapshot {} (UPDATE_SNAPSHOTS=1 writes it)",
                snap.display()
            )),
        }
    }
    assert!(count >= 45, "only {count} corpus files");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every snapshot belongs to a corpus file (none left behind by a rename).
#[test]
fn no_orphan_snapshots() {
    let dir = corpus_dir();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "expected") {
            assert!(
                p.with_extension("toml").is_file(),
                "{} has no .toml",
                p.display()
            );
        }
    }
}

/// Errors, like every diagnostic, come out in file order with the whole-file ones first, and
/// the multi-error files report all their problems in one run.
#[test]
fn all_errors_are_reported_at_once() {
    let count_errors = |name: &str| {
        let text = std::fs::read_to_string(corpus_dir().join(format!("{name}.toml"))).unwrap();
        check(&text).1.error_count()
    };
    // Parse errors (unknown keys, types, names, duplicates) plus stack-wide ones (cycle,
    // default target) together.
    assert_eq!(count_errors("58-multiple-parse-errors"), 7);
    // Planning errors of one service: arg, apt, user, workdir, port, path, mode, duration, label.
    assert_eq!(count_errors("59-multiple-plan-errors"), 9);
}

fn llb_gen_bin() -> &'static str {
    env!("CARGO_BIN_EXE_llb-gen")
}

/// Run `llb-gen check stack.toml` in a fresh directory holding `text` as `stack.toml`.
fn cli_check(case: &str, text: &str) -> std::process::Output {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("diagnostics-cli-{case}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("stack.toml"), text).unwrap();
    Command::new(llb_gen_bin())
        .args(["check", "stack.toml"])
        .current_dir(&dir)
        .output()
        .expect("run llb-gen")
}

#[test]
fn cli_check_exits_1_and_prints_locations() {
    for (case, location) in [
        ("13-unknown-layer-key", "stack.toml:4:1"),
        ("39-undefined-arg-from", "stack.toml:6:16"),
        ("33-cycle-two", "stack.toml:3:8"),
        ("02-toml-unterminated-string", "stack.toml:3:25"),
    ] {
        let path = corpus_dir().join(format!("{case}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let out = cli_check(case, &text);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        assert!(
            stderr.contains(&format!("--> {location}\n")),
            "{case}: no {location} in\n{stderr}"
        );
        // The CLI prints exactly what the library renders.
        let (file, diags) = check(&text);
        assert_eq!(stderr, diags.render(&file), "{case}");
    }
}

#[test]
fn cli_check_accepts_the_examples() {
    let mut stacks = vec![repo().join("stack.toml")];
    for e in std::fs::read_dir(repo().join("examples")).unwrap() {
        let p = e.unwrap().path().join("stack.toml");
        if p.is_file() {
            stacks.push(p);
        }
    }
    assert!(stacks.len() >= 2, "{stacks:?}");
    for p in stacks {
        let out = Command::new(llb_gen_bin())
            .arg("check")
            .arg(&p)
            .output()
            .expect("run llb-gen");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(": ok ("),
            "{}",
            p.display()
        );
    }
}
