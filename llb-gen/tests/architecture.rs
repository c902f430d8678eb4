//! Architecture tests: the module map's invariants (ARCHITECTURE.md), checked on the source
//! tree and on every example target, so that a change breaking one fails `cargo test`.

use std::collections::BTreeSet;
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

/// Every `.rs` file under `dir` (relative to the repository), with its text.
fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(d: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    let mut out = vec![];
    walk(&repo().join(dir), &mut out);
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

/// The lines of `files` that contain any of `needles` (comments included: a model module
/// should not even talk in LLB terms), as `path:line: text`.
fn offending(files: &[(PathBuf, String)], needles: &[&str]) -> Vec<String> {
    let mut out = vec![];
    for (path, text) in files {
        for (i, line) in text.lines().enumerate() {
            if needles.iter().any(|n| line.contains(n)) {
                out.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn model_modules_never_mention_llb_pb_or_convert() {
    let mut files = sources("llb-gen/src/plan");
    files.extend(sources("llb-gen/src/stack"));
    let bad = offending(
        &files,
        &["crate::llb", "crate::pb", "crate::convert", "llb::", "pb::"],
    );
    assert!(
        bad.is_empty(),
        "the plan and stack model must not depend on LLB or the converter:\n{}",
        bad.join("\n")
    );
}

#[test]
fn llb_imports_neither_plan_nor_stack() {
    let bad = offending(
        &sources("llb-gen/src/llb"),
        &["crate::plan", "crate::stack", "crate::convert"],
    );
    assert!(
        bad.is_empty(),
        "the LLB builder must not know the plan, the stack or the converter:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_frontend_never_decodes_llb_ops() {
    let bad = offending(
        &sources("frontend/src"),
        &[
            "pb::Op::decode",
            "Op::decode(",
            "pb::op::Op::",
            "pb::ExecOp",
            "pb::SourceOp",
        ],
    );
    assert!(
        bad.is_empty(),
        "the frontend reads what it needs from the plan, never from LLB bytes:\n{}",
        bad.join("\n")
    );
}

/// Every stack the project ships, with the options the snapshots use.
fn example_targets() -> Vec<(String, SourceFile, BuildOptions)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("stack.toml").is_file())
        .collect();
    dirs.sort();
    dirs.insert(0, repo());
    let mut out = vec![];
    for d in dirs {
        let text = std::fs::read_to_string(d.join("stack.toml")).unwrap();
        let file = SourceFile::new("stack.toml", text);
        let ignore = std::fs::read_to_string(d.join(".dockerignore")).unwrap_or_default();
        let (stack, _) = llb_gen::stack::parse(&file);
        let mut targets: Vec<String> = stack.images.iter().map(|i| i.name.value.clone()).collect();
        // Every variant too: cache ids carry the variant.
        for v in &stack.variants {
            for i in &stack.images {
                targets.push(format!("{}@{}", i.name.value, v.name.value));
            }
        }
        for t in targets {
            let opts = BuildOptions {
                target: Some(t.clone()),
                network: Network::Host,
                context: ContextOptions {
                    name: "context".into(),
                    session_id: String::new(),
                    exclude_patterns: llb_gen::plan::dockerignore_patterns(&ignore),
                },
                ..BuildOptions::default()
            };
            out.push((format!("{}:{t}", d.display()), file.clone(), opts));
        }
    }
    out
}

fn ops(def: &llb_gen::pb::Definition) -> Vec<llb_gen::pb::Op> {
    def.def
        .iter()
        .map(|b| llb_gen::pb::Op::decode(b.as_slice()).expect("op"))
        .collect()
}

#[test]
fn cache_ids_and_context_reads_of_every_example_target_come_from_the_plan() {
    let mut checked = 0;
    for (name, file, opts) in example_targets() {
        // A variant may not be built for the default platform: nothing to compare then.
        let Ok((_, plan)) = llb_gen::load(&file, &opts) else {
            continue;
        };
        let out = convert(&plan, &opts, &NoImages, &file)
            .unwrap_or_else(|d| panic!("{name}: {}", d.render(&file)));
        let mut cache_ids = BTreeSet::new();
        let mut includes = BTreeSet::new();
        for op in ops(&out.definition) {
            match &op.op {
                Some(llb_gen::pb::op::Op::Exec(e)) => {
                    for m in &e.mounts {
                        if m.mount_type == llb_gen::pb::MountType::Cache as i32 {
                            cache_ids.insert(m.cache_opt.as_ref().expect("cache opt").id.clone());
                        }
                    }
                }
                Some(llb_gen::pb::op::Op::Source(s)) if s.identifier.starts_with("local://") => {
                    let p: Vec<String> =
                        serde_json::from_str(&s.attrs["local.includepattern"]).unwrap();
                    includes.insert(p);
                }
                _ => {}
            }
        }
        let planned: BTreeSet<String> = plan.caches().into_iter().map(|c| c.id).collect();
        assert_eq!(
            cache_ids, planned,
            "{name}: cache ids: LLB vs plan.caches()"
        );
        let reads: BTreeSet<Vec<String>> = plan
            .context_reads()
            .iter()
            .map(|r| r.include_patterns())
            .collect();
        assert_eq!(
            includes, reads,
            "{name}: context include patterns: LLB vs plan.context_reads()"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} example targets planned");
}

/// One vertex-name grammar: `[KIND NAME( venv)?( I/N)?] TEXT` (KIND `layer` or `service`,
/// I from 1 to N) or `[internal] TEXT`.
fn grammar_error(name: &str) -> Option<String> {
    let Some(rest) = name.strip_prefix('[') else {
        return Some("does not start with `[`".into());
    };
    let Some((label, text)) = rest.split_once("] ") else {
        return Some("no `] ` after the label".into());
    };
    if text.trim().is_empty() || text != text.trim() {
        return Some("empty or padded text".into());
    }
    if label == "internal" {
        return None;
    }
    let mut words: Vec<&str> = label.split(' ').collect();
    if !matches!(words.first(), Some(&"layer") | Some(&"service")) || words.len() < 2 {
        return Some(format!(
            "label `{label}` is not `layer NAME` or `service NAME`"
        ));
    }
    let image = words[1];
    if image.is_empty()
        || !image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Some(format!("image name `{image}`"));
    }
    words.drain(..2);
    if words.first() == Some(&"venv") {
        words.remove(0);
    }
    match words.as_slice() {
        [] => None,
        [count] => {
            let Some((i, n)) = count.split_once('/') else {
                return Some(format!("unexpected word `{count}` in the label"));
            };
            match (i.parse::<u32>(), n.parse::<u32>()) {
                (Ok(i), Ok(n)) if 1 <= i && i <= n => None,
                _ => Some(format!("step count `{count}`")),
            }
        }
        more => Some(format!("unexpected words {more:?} in the label")),
    }
}

#[test]
fn every_vertex_name_in_the_snapshots_matches_one_grammar() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let mut bad = vec![];
    let mut names = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let text = std::fs::read_to_string(&p).unwrap();
        for line in text.lines() {
            let Some(name) = line.strip_prefix("    name: ") else {
                continue;
            };
            names += 1;
            if let Some(e) = grammar_error(name) {
                bad.push(format!("{}: `{name}`: {e}", p.display()));
            }
        }
    }
    assert!(names > 100, "only {names} vertex names found");
    assert!(
        bad.is_empty(),
        "vertex names off the grammar:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_grammar_rejects_what_it_should() {
    for bad in [
        "layer api from x",
        "[layer api 3/2] pip install",
        "[layer api 0/2] pip install",
        "[stage api] from x",
        "[layer api extra] copy x",
        "[layer api]  padded",
    ] {
        assert!(grammar_error(bad).is_some(), "accepted `{bad}`");
    }
    for good in [
        "[layer api] from docker.io/library/python:3.12-slim",
        "[service app venv 2/3] python3 -m venv /opt/venv",
        "[internal] layerstack cross-install script",
    ] {
        assert_eq!(grammar_error(good), None, "{good}");
    }
}

#[test]
fn subrequests_never_import_the_build_module() {
    let files: Vec<(PathBuf, String)> = sources("frontend/src")
        .into_iter()
        .filter(|(p, _)| p.ends_with("subrequests.rs") || p.ends_with("request.rs"))
        .collect();
    assert_eq!(files.len(), 2, "frontend/src/{{subrequests,request}}.rs");
    let bad = offending(&files, &["crate::build", "super::build", "build::"]);
    assert!(
        bad.is_empty(),
        "subrequests and request reading must not depend on the build (no cycle):\n{}",
        bad.join("\n")
    );
}

/// The read-only mounts of files made on scratch (a `file` vertex without inputs) in one
/// snapshot: `(mount line, vertex)`. BuildKit content-hashes a read-only mount; such a
/// dependency completes before the other dependencies' keys arrive from an imported cache, and
/// the solver then stops matching the exec against that cache (issue 13: the two-platform
/// local-cache round trip re-ran the cross-install probe in 8 of 20 runs).
fn scratch_file_mounts(text: &str) -> Vec<(String, String)> {
    let is_id =
        |w: &str| w.len() > 1 && w.starts_with('v') && w[1..].bytes().all(|b| b.is_ascii_digit());
    // Each vertex: its header `vN = KIND …`, then its indented lines until the next header.
    let mut vertices: Vec<(&str, &str, Vec<&str>)> = vec![];
    for line in text.lines() {
        match line.split_once(" = ") {
            Some((id, rest)) if is_id(id) => vertices.push((id, rest, vec![])),
            _ => {
                if let Some(v) = vertices.last_mut() {
                    v.2.push(line.trim_start());
                }
            }
        }
    }
    // `file` vertices whose actions name no other vertex: files made on scratch.
    let no_inputs: BTreeSet<&str> = vertices
        .iter()
        .filter(|(_, kind, body)| {
            kind.starts_with("file")
                && !body
                    .iter()
                    .filter(|l| !l.starts_with("name:") && !l.starts_with("at:"))
                    .any(|l| l.split(|c: char| !c.is_ascii_alphanumeric()).any(is_id))
        })
        .map(|(id, ..)| *id)
        .collect();
    text.lines()
        .filter_map(|l| {
            let (_, src) = l.trim().strip_prefix("mount ")?.split_once(" ← ")?;
            let (id, ro) = src.split_once(' ')?;
            (ro == "ro" && no_inputs.contains(id)).then(|| (l.trim().to_string(), id.to_string()))
        })
        .collect()
}

#[test]
fn no_exec_mounts_a_file_made_on_scratch() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "txt") && !p.to_string_lossy().ends_with(".plan.txt")
        })
        .collect();
    entries.sort();
    let mut bad = vec![];
    for p in &entries {
        for (line, id) in scratch_file_mounts(&std::fs::read_to_string(p).unwrap()) {
            bad.push(format!(
                "{}: `{line}` ({id} is a file made on scratch)",
                p.display()
            ));
        }
    }
    assert!(entries.len() > 20, "only {} snapshots", entries.len());
    assert!(
        bad.is_empty(),
        "helper files must be written into the exec's root, not mounted from scratch:\n{}",
        bad.join("\n")
    );
    // The check finds what it looks for (the shape the lock installer had before).
    let before = "v0 = source docker-image://x  [linux/amd64]\n\
                  v1 = file  [linux/amd64]\n    name: [internal] layerstack lock installer\n    mkfile scratch:/lock_install.py mode=644 (10 bytes)\n\
                  v2 = exec  [linux/amd64]\n    mount / ← v0 → output 0\n    mount /run/layerstack/lock ← v1 ro\n";
    assert_eq!(
        scratch_file_mounts(before),
        vec![(
            "mount /run/layerstack/lock ← v1 ro".to_string(),
            "v1".to_string()
        )]
    );
    let staged = "v5 = source local://context\n\
                  v6 = file  [linux/amd64]\n    copy v5:/r.txt → scratch:/r.txt\n\
                  v7 = exec  [linux/amd64]\n    mount /run/layerstack/requirements ← v6 ro\n";
    assert!(scratch_file_mounts(staged).is_empty());
}
