//! The fuzz target and a coverage-free, TOML-aware mutator for `stack.toml` inputs.
//!
//! [`run_one`] drives one input through the whole pipeline, as `llb-gen check` and the frontend
//! do: parse → `llb_gen::check` → for each target (and the default one) `llb_gen::load` →
//! `convert::convert` → `llb::dump` and the binary encoding, rendering every diagnostic on
//! the way. Besides panics it checks a few invariants and panics (with an `invariant:`
//! message) when one breaks:
//!
//! * every diagnostic span lies inside the file;
//! * a stack that `check` accepts (no errors) loads and converts for every target;
//! * converting the same plan twice gives the same bytes;
//! * for linux/arm64 (a foreign platform: cross-installs on the linux/amd64 twin), asking for
//!   probes and answering every one (alternately "cross" and "emulate") converges, and the
//!   answered conversion is deterministic.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use llb_gen::convert::{CrossEnv, CrossVerdict, NoImages, convert, convert_cross};
use llb_gen::diag::Diagnostics;
use llb_gen::plan::BuildOptions;
use llb_gen::source::SourceFile;
use prost::Message;

/// What one run saw: a coarse signature of the diagnostics and pipeline outcome. The mutation
/// fuzzer keeps inputs whose signature is new (a cheap stand-in for coverage).
#[derive(Debug, Default)]
pub struct Outcome {
    pub shapes: BTreeSet<String>,
    pub converted: usize,
}

/// Run one input through the pipeline. Panics on a bug (a panic in the library or a broken
/// invariant).
pub fn run_one(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    let file = SourceFile::new("stack.toml", text.as_ref());
    let mut out = Outcome::default();

    // The same bytes as an index page (hash-pinned requirements read pages from the network):
    // any text is read or refused, never a panic, and every link it yields is absolute.
    if let Ok(files) = llb_gen::lock::index::parse(&text, "https://idx.example/simple/x/") {
        for f in files {
            assert!(f.url.starts_with("http"), "{f:?}");
        }
    }

    let diags = llb_gen::check(&file, &BuildOptions::default());
    look_at(&diags, &file, &mut out, "check");
    let check_ok = !diags.has_errors();

    let (stack, _) = llb_gen::stack::parse(&file);
    let mut targets: Vec<Option<String>> = vec![None];
    targets.extend(stack.images.iter().map(|i| Some(i.name.value.clone())));
    for (n, target) in targets.into_iter().enumerate() {
        let opts = BuildOptions {
            target: target.clone(),
            ..BuildOptions::default()
        };
        match llb_gen::load(&file, &opts) {
            Ok((_, plan)) => {
                look_at(&plan.warnings, &file, &mut out, "plan");
                match convert(&plan, &opts, &NoImages, &file) {
                    Ok(c) => {
                        out.converted += 1;
                        let dump = llb_gen::llb::dump(&c.definition);
                        let bytes = c.definition.encode_to_vec();
                        out.shapes
                            .insert(format!("converted:{}", plan.images.len()));
                        if n <= 2 {
                            cross(&file, &opts, &mut out);
                        }
                        if n == 1 {
                            let again = convert(&plan, &opts, &NoImages, &file)
                                .expect("second convert of the same plan");
                            assert!(
                                again.definition.encode_to_vec() == bytes
                                    && again.image_config == c.image_config
                                    && llb_gen::llb::dump(&again.definition) == dump,
                                "invariant: converting the same plan twice differs"
                            );
                        }
                    }
                    Err(d) => {
                        look_at(&d, &file, &mut out, "convert");
                        if check_ok && target.is_some() {
                            panic!(
                                "invariant: check passed but convert of {target:?} failed:\n{}",
                                d.render(&file)
                            );
                        }
                    }
                }
            }
            Err(e) => {
                look_at(&e.diagnostics, &file, &mut out, "load");
                let _ = e.to_string();
                let _ = e.primary();
                if check_ok && target.is_some() {
                    panic!(
                        "invariant: check passed but load of {target:?} failed:\n{}",
                        e.diagnostics.render(&e.file)
                    );
                }
            }
        }
    }
    out
}

/// The same target for linux/arm64 with cross-installs: every probe the converter asks for is
/// answered (alternately cross and emulate) until none is left.
fn cross(file: &SourceFile, opts: &BuildOptions, out: &mut Outcome) {
    let opts = BuildOptions {
        platform: llb_gen::platform::Platform::new("linux", "arm64", None),
        ..opts.clone()
    };
    let Ok((stack, plan)) = llb_gen::load(file, &opts) else {
        return;
    };
    let twin = llb_gen::twin_plan(&stack, &opts);
    let mut verdicts = BTreeMap::new();
    for round in 0..64 {
        let env = CrossEnv {
            twin: twin.as_ref(),
            verdicts: &verdicts,
            ask: true,
        };
        let Ok(c) = convert_cross(&plan, &opts, &NoImages, file, Some(env)) else {
            return;
        };
        let Some(p) = c.probes.first() else {
            out.shapes.insert(format!("cross:{round}"));
            let again = convert_cross(
                &plan,
                &opts,
                &NoImages,
                file,
                Some(CrossEnv {
                    twin: twin.as_ref(),
                    verdicts: &verdicts,
                    ask: true,
                }),
            )
            .expect("the same conversion again");
            assert!(
                again.definition == c.definition,
                "invariant: an answered cross conversion differs between runs"
            );
            return;
        };
        let v = match round % 3 {
            0 => CrossVerdict::Cross,
            1 => CrossVerdict::Emulate(format!("round {round}")),
            // A resolve that wrote a lock (one pure wheel): installed the lock way.
            _ => CrossVerdict::Resolved(llb_gen::convert::ResolvedLock {
                pylock: format!(
                    "lock-version = \"1.0\"\n[[packages]]\nname = \"fz\"\nversion = \"{round}\"\n\
                     wheels = [{{ url = \"http://127.0.0.1:9/fz-{round}-py3-none-any.whl\", \
                     hashes = {{ sha256 = \"{}\" }} }}]\n",
                    "0".repeat(64)
                ),
                python: "3.12.0".into(),
                libc: "glibc2.36".into(),
                executable: "/usr/local/bin/python3".into(),
            }),
        };
        assert!(
            verdicts.insert(p.key.clone(), v).is_none(),
            "invariant: a probe was asked again after its answer"
        );
    }
    panic!("invariant: cross-install probes did not converge in 64 rounds");
}

/// Render every diagnostic (exercising span arithmetic) and record their shapes.
fn look_at(diags: &Diagnostics, file: &SourceFile, out: &mut Outcome, phase: &str) {
    let _ = diags.render(file);
    for d in &diags.items {
        let _ = d.one_line(file);
        if let Some(s) = d.span {
            assert!(
                s.start <= s.end && s.end <= file.text.len(),
                "invariant: span {s:?} outside a file of {} bytes: {}",
                file.text.len(),
                d.one_line(file)
            );
        }
        out.shapes.insert(format!("{phase}:{}", shape(&d.message)));
    }
}

/// A message with its quoted parts and numbers blanked: `unknown key `_` in `_``.
fn shape(msg: &str) -> String {
    let mut s = String::new();
    let mut in_tick = false;
    for c in msg.chars() {
        if c == '`' {
            in_tick = !in_tick;
            s.push('`');
        } else if !in_tick && !c.is_ascii_digit() {
            s.push(c);
        }
    }
    s
}

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// The default seed files: the invalid-stack corpus, the shipped stacks and `fuzz/seeds/`.
/// (`llb-gen/tests/invalid/pending/` is left out: those inputs crash at once.)
pub fn default_seed_paths() -> Vec<PathBuf> {
    let root = repo_root();
    let mut out = vec![root.join("stack.toml")];
    for dir in [
        root.join("llb-gen/tests/invalid"),
        root.join("fuzz/seeds"),
        root.join("examples"),
    ] {
        collect_tomls(&dir, &mut out, dir.ends_with("examples"));
    }
    out.retain(|p| p.is_file());
    out.sort();
    out.dedup();
    out
}

fn collect_tomls(dir: &Path, out: &mut Vec<PathBuf>, nested: bool) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if nested && p.is_dir() {
            out.push(p.join("stack.toml"));
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

/// xorshift64*: small, fast, reproducible from `--seed`.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Every key the parser knows, at every level (and a few near misses).
pub const KEYS: &[&str] = &[
    "name",
    "description",
    "default",
    "python",
    "platforms",
    "install-env",
    "from",
    "apt",
    "user",
    "workdir",
    "run",
    "requirements",
    "pip",
    "index-url",
    "extra-index-urls",
    "env",
    "copy",
    "cmd",
    "entrypoint",
    "expose",
    "healthcheck",
    "labels",
    "stop-signal",
    "venv",
    "uid",
    "gid",
    "home",
    "shell",
    "create",
    "src",
    "dest",
    "chown",
    "mode",
    "exclude",
    "interval",
    "timeout",
    "start-period",
    "retries",
    "path",
    "builder",
    "builder-apt",
    "pipp",
    "PY",
    "BASE",
    "APP",
    "A",
    "B",
    "HOME",
    "PATH",
];

/// Table headers.
pub const TABLES: &[&str] = &[
    "[stack]",
    "[args]",
    "[layers.base]",
    "[layers.a]",
    "[layers.b]",
    "[layers.ml]",
    "[services.api]",
    "[services.worker]",
    "[services.a]",
    "[stack.install-env]",
    "[layers.base.env]",
    "[services.api.healthcheck]",
    "[services.api.venv]",
    "[services.api.user]",
    "[[services.api.copy]]",
    "[layers]",
    "[services]",
    "[args.PY]",
];

/// Values of every TOML type, including the interesting strings.
pub const VALUES: &[&str] = &[
    "\"python:3.12-slim\"",
    "\"base\"",
    "\"a\"",
    "\"b\"",
    "\"api\"",
    "\"worker\"",
    "\"ml\"",
    "\"${PY}\"",
    "\"${BASE}\"",
    "\"${A}\"",
    "\"${NOPE}\"",
    "\"${TARGETARCH}\"",
    "\"$${A}\"",
    "\"python:${PY}-slim\"",
    "\"${\"",
    "\"${}\"",
    "\"$\"",
    "\"\"",
    "\"/\"",
    "\".\"",
    "\"..\"",
    "\"../x\"",
    "\"/abs\"",
    "\"apps/api\"",
    "\"*.py\"",
    "\"0755\"",
    "\"10s\"",
    "\"1m30s\"",
    "\"none\"",
    "\"root\"",
    "\"0\"",
    "\"app:app\"",
    "\"8000/udp\"",
    "\"linux/arm64\"",
    "\"linux/arm/v7\"",
    "\"-o x\"",
    "\"curl git\"",
    "\"é\"",
    "\"\\u00e9\"",
    "'lit${A}'",
    "\"\"\"multi\n${A}\nline\"\"\"",
    "'''raw'''",
    "0",
    "1",
    "-1",
    "8000",
    "65536",
    "0x1F90",
    "0o755",
    "0b1",
    "4294967296",
    "99999999999999999999",
    "1.5",
    "inf",
    "nan",
    "true",
    "false",
    "1979-05-27",
    "1979-05-27T07:32:00Z",
    "[]",
    "[\"curl\"]",
    "[\"a\", \"b\"]",
    "[1, 2]",
    "[[1]]",
    "{}",
    "{ src = \"a\" }",
    "{ name = \"app\", uid = 1000 }",
    "{ cmd = \"true\" }",
    "{ path = \"/opt/venv\", builder = \"base\" }",
    "{ default = \"x\" }",
    "{ A = \"1\" }",
    "[{ src = \"a\", dest = \"/b\", chown = false, mode = 420 }]",
];

/// Fragments inserted inside strings.
pub const FRAGMENTS: &[&str] = &[
    "${PY}", "${A}", "${BASE}", "${NOPE}", "${", "}", "$$", "$", "${A}${A}", "${1}", "${A:-x}",
    "..", "/", "\\", "\\u0041", "\\n", "\"", "'", "é", "\u{0}", "\r", "\t", " ", ":", "@", "=",
    "#", ",", "[", "]", "{", "}", ".", "-", "_", "\u{feff}", "𝕏",
];

/// Bytes worth inserting on their own.
const SPECIAL: &[u8] = b"\"'[]{}=,.#\n\r\t $\\-_:/0123456789aAzZ";

/// A mutation fuzzer's mutator: stacks a few random edits on a parent input.
pub struct Mutator {
    pub rng: Rng,
}

impl Mutator {
    pub fn new(seed: u64) -> Mutator {
        Mutator {
            rng: Rng::new(seed),
        }
    }

    /// A mutated copy of `parent`, sometimes spliced with `other`.
    pub fn mutate(&mut self, parent: &[u8], other: &[u8]) -> Vec<u8> {
        let mut data = parent.to_vec();
        let n = 1 + self.rng.below(4);
        for _ in 0..n {
            self.one(&mut data, other);
        }
        if data.len() > 64 * 1024 {
            data.truncate(64 * 1024);
        }
        data
    }

    fn one(&mut self, data: &mut Vec<u8>, other: &[u8]) {
        let r = &mut self.rng;
        match r.below(18) {
            // Byte-level edits.
            0 if !data.is_empty() => {
                let i = r.below(data.len());
                data[i] ^= 1 << r.below(8);
            }
            1 if !data.is_empty() => {
                let i = r.below(data.len());
                data[i] = *r.pick(SPECIAL);
            }
            2 => {
                let i = r.below(data.len() + 1);
                data.insert(i, *r.pick(SPECIAL));
            }
            3 if !data.is_empty() => {
                let i = r.below(data.len());
                let len = 1 + r.below(16.min(data.len() - i));
                data.drain(i..i + len);
            }
            // Line-level edits.
            4 => {
                let mut lines = split_lines(data);
                if !lines.is_empty() {
                    let i = r.below(lines.len());
                    let j = r.below(lines.len() + 1);
                    let l = lines[i].clone();
                    lines.insert(j, l);
                    *data = lines.concat();
                }
            }
            5 => {
                let mut lines = split_lines(data);
                if !lines.is_empty() {
                    let i = r.below(lines.len());
                    lines.remove(i);
                    *data = lines.concat();
                }
            }
            6 => {
                let mut lines = split_lines(data);
                if lines.len() > 1 {
                    let i = r.below(lines.len());
                    let j = r.below(lines.len());
                    lines.swap(i, j);
                    *data = lines.concat();
                }
            }
            // Splice lines from another input.
            7 => {
                let theirs = split_lines(other);
                let mut lines = split_lines(data);
                if !theirs.is_empty() {
                    let a = r.below(theirs.len());
                    let b = (a + 1 + r.below(8)).min(theirs.len());
                    let at = r.below(lines.len() + 1);
                    let chunk: Vec<Vec<u8>> = theirs[a..b].to_vec();
                    lines.splice(at..at, chunk);
                    *data = lines.concat();
                }
            }
            // TOML-aware insertions.
            8 | 9 => {
                let line = format!("{} = {}\n", r.pick(KEYS), r.pick(VALUES));
                insert_line(data, r, line.as_bytes());
            }
            10 => {
                let line = format!("{}\nfrom = {}\n", r.pick(TABLES), r.pick(VALUES));
                insert_line(data, r, line.as_bytes());
            }
            11 => {
                // A fragment inside an existing string.
                let quotes: Vec<usize> = data
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'"')
                    .map(|(i, _)| i + 1)
                    .collect();
                let at = if quotes.is_empty() {
                    r.below(data.len() + 1)
                } else {
                    *r.pick(&quotes)
                };
                let frag = r.pick(FRAGMENTS).as_bytes();
                data.splice(at.min(data.len())..at.min(data.len()), frag.iter().copied());
            }
            12 => {
                // Replace the value of a `key = value` line.
                let mut lines = split_lines(data);
                let cand: Vec<usize> = (0..lines.len())
                    .filter(|&i| lines[i].contains(&b'='))
                    .collect();
                if !cand.is_empty() {
                    let i = *r.pick(&cand);
                    let eq = lines[i].iter().position(|b| *b == b'=').unwrap();
                    let mut l = lines[i][..=eq].to_vec();
                    l.push(b' ');
                    l.extend_from_slice(r.pick(VALUES).as_bytes());
                    l.push(b'\n');
                    lines[i] = l;
                    *data = lines.concat();
                }
            }
            13 => {
                // Replace the key of a `key = value` line.
                let mut lines = split_lines(data);
                let cand: Vec<usize> = (0..lines.len())
                    .filter(|&i| lines[i].contains(&b'=') && !lines[i].starts_with(b"#"))
                    .collect();
                if !cand.is_empty() {
                    let i = *r.pick(&cand);
                    let eq = lines[i].iter().position(|b| *b == b'=').unwrap();
                    let mut l = r.pick(KEYS).as_bytes().to_vec();
                    l.push(b' ');
                    l.extend_from_slice(&lines[i][eq..]);
                    lines[i] = l;
                    *data = lines.concat();
                }
            }
            14 => {
                // Splice raw bytes from the other input.
                if !other.is_empty() {
                    let a = r.below(other.len());
                    let b = (a + 1 + r.below(64)).min(other.len());
                    let at = r.below(data.len() + 1);
                    data.splice(at..at, other[a..b].iter().copied());
                }
            }
            15 | 16 => extract_to_arg(data, r),
            _ => {
                // Repeat a chunk (deep nesting, long lines).
                if !data.is_empty() {
                    let a = r.below(data.len());
                    let b = (a + 1 + r.below(8)).min(data.len());
                    let chunk = data[a..b].to_vec();
                    let times = 1 + r.below(64);
                    for _ in 0..times {
                        data.splice(a..a, chunk.iter().copied());
                    }
                }
            }
        }
    }
}

/// Move a string value into a new arg: `from = "base"` becomes `from = "${A7}"` plus
/// `A7 = "base"` under `[args]`. The stack means the same, but every check now has to see
/// through interpolation.
fn extract_to_arg(data: &mut Vec<u8>, r: &mut Rng) {
    let text = String::from_utf8_lossy(data).into_owned();
    // Plain one-line basic strings after `=` or `,` or `[` (values, not keys or headers).
    let mut spans = vec![];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if !t.starts_with('[') && !t.starts_with('#') {
            let b = line.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'"' {
                    let prev = line[..i].trim_end().chars().last();
                    let end = line[i + 1..].find(['"', '\\']).map(|e| i + 1 + e);
                    match end {
                        Some(e) if b[e] == b'"' => {
                            if matches!(prev, Some('=' | ',' | '[')) {
                                spans.push((offset + i, offset + e + 1));
                            }
                            i = e + 1;
                            continue;
                        }
                        _ => break,
                    }
                }
                i += 1;
            }
        }
        offset += line.len();
    }
    if spans.is_empty() {
        return;
    }
    let (a, b) = *r.pick(&spans);
    let value = text[a..b].to_string();
    let name = format!("A{}", r.below(100));
    let mut out = String::with_capacity(text.len() + 32);
    out.push_str(&text[..a]);
    out.push_str(&format!("\"${{{name}}}\""));
    out.push_str(&text[b..]);
    let decl = format!("{name} = {value}\n");
    let header = if out.starts_with("[args]\n") {
        Some(0)
    } else {
        out.find("\n[args]\n").map(|p| p + 1)
    };
    match header {
        Some(p) => out.insert_str(p + "[args]\n".len(), &decl),
        None => {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str("[args]\n");
            out.push_str(&decl);
        }
    }
    *data = out.into_bytes();
}

fn insert_line(data: &mut Vec<u8>, r: &mut Rng, line: &[u8]) {
    let mut lines = split_lines(data);
    if let Some(last) = lines.last_mut()
        && !last.ends_with(b"\n")
    {
        last.push(b'\n');
    }
    let at = r.below(lines.len() + 1);
    lines.insert(at, line.to_vec());
    *data = lines.concat();
}

fn split_lines(data: &[u8]) -> Vec<Vec<u8>> {
    data.split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_blank_the_specifics() {
        assert_eq!(
            shape("unknown key `pipp` in `layers.a`"),
            "unknown key `` in ``"
        );
        assert_eq!(shape("invalid port 70000"), "invalid port ");
    }

    /// Seeds that crash today (see README.md, "Findings"); the rest must run cleanly.
    const KNOWN_CRASHERS: &[&str] = &[];

    #[test]
    fn seeds_run_without_panicking() {
        let seeds = default_seed_paths();
        assert!(seeds.len() > 40, "{seeds:?}");
        for p in seeds {
            let data = std::fs::read(&p).unwrap();
            let r = std::panic::catch_unwind(|| run_one(&data));
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            assert_eq!(
                r.is_err(),
                KNOWN_CRASHERS.contains(&name.as_str()),
                "{}",
                p.display()
            );
        }
    }

    #[test]
    fn extracts_values_into_args() {
        let mut r = Rng::new(3);
        let mut d = b"[layers.base]\nfrom = \"base\"\n".to_vec();
        extract_to_arg(&mut d, &mut r);
        let s = String::from_utf8(d).unwrap();
        assert!(s.starts_with("[layers.base]\nfrom = \"${A"), "{s}");
        assert!(
            s.contains("\n[args]\nA") && s.ends_with(" = \"base\"\n"),
            "{s}"
        );
        let mut d = b"[args]\nX = \"1\"\n[services.a]\napt = [\"curl\", \"git\"]\n".to_vec();
        extract_to_arg(&mut d, &mut r);
        let s = String::from_utf8(d).unwrap();
        assert_eq!(s.matches("[args]").count(), 1, "{s}");
    }

    #[test]
    fn mutations_stay_bounded() {
        let mut m = Mutator::new(7);
        let mut d = b"[services.api]\nfrom = \"python:3\"\n".to_vec();
        for _ in 0..2000 {
            d = m.mutate(&d, b"[layers.b]\nfrom = \"a\"\n");
        }
        assert!(d.len() <= 64 * 1024);
    }
}
