//! `fuzz-stack`: a coverage-free mutation fuzzer for stack.toml on stable Rust.
//!
//! The process you start is a supervisor: it runs a worker child (this binary with `--worker`)
//! that mutates inputs and runs them through [`layerstack_fuzz::run_one`] under
//! `catch_unwind`. Panics are recorded by the worker; a worker that dies (stack overflow,
//! abort) is detected by the supervisor, which saves the input the worker was running and
//! starts a new worker. See `fuzz/README.md`.
//!
//! ```text
//! fuzz-stack [--seconds N] [--seed S] [--corpus PATH]... [--crashes DIR]
//! fuzz-stack --run FILE...            run inputs once (exit 3 if one panics)
//! fuzz-stack --minimize FILE [--out F] shrink a crashing input, keeping its crash signature
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use layerstack_fuzz::{Mutator, Rng, default_seed_paths, repo_root, run_one};

#[derive(Clone, Debug)]
struct Args {
    seconds: u64,
    seed: u64,
    corpus: Vec<PathBuf>,
    crashes: PathBuf,
    worker: bool,
    current: Option<PathBuf>,
    /// Hashes of inputs that killed an earlier worker: a new worker skips such seeds.
    skip: Vec<u64>,
    run: Vec<PathBuf>,
    minimize: Option<PathBuf>,
    out: Option<PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: fuzz-stack [--seconds N] [--seed S] [--corpus PATH]... [--crashes DIR]\n       \
         fuzz-stack --run FILE...\n       fuzz-stack --minimize FILE [--out FILE]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        seconds: 60,
        seed: 1,
        corpus: vec![],
        crashes: repo_root().join("fuzz/crashes"),
        worker: false,
        current: None,
        skip: vec![],
        run: vec![],
        minimize: None,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--seconds" => a.seconds = val().parse().unwrap_or_else(|_| usage()),
            "--seed" => a.seed = val().parse().unwrap_or_else(|_| usage()),
            "--corpus" => a.corpus.push(val().into()),
            "--crashes" => a.crashes = val().into(),
            "--worker" => a.worker = true,
            "--current" => a.current = Some(val().into()),
            "--skip" => a.skip.push(val().parse().unwrap_or_else(|_| usage())),
            "--minimize" => a.minimize = Some(val().into()),
            "--out" => a.out = Some(val().into()),
            "--run" => {
                a.run.extend(it.by_ref().map(PathBuf::from));
                if a.run.is_empty() {
                    usage();
                }
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    a
}

fn main() -> ExitCode {
    let args = parse_args();
    if !args.run.is_empty() {
        return run_files(&args.run);
    }
    if let Some(f) = &args.minimize {
        return minimize(f, args.out.as_deref());
    }
    if args.worker {
        worker(&args);
        return ExitCode::SUCCESS;
    }
    supervise(&args)
}

// ---------------------------------------------------------------------------------------------
// Panics: a hook that remembers where the last one happened instead of printing it.

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn install_quiet_hook() {
    std::panic::set_hook(Box::new(|info| {
        let loc = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{loc}: {msg}"));
    }));
}

/// Run `data`; Some(signature) when it panicked. The signature is the panic location and the
/// first line of the message, so one bug gives one signature.
fn try_one(data: &[u8]) -> (Option<String>, Option<String>, layerstack_fuzz::Outcome) {
    *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = None;
    match catch_unwind(AssertUnwindSafe(|| run_one(data))) {
        Ok(o) => (None, None, o),
        Err(_) => {
            let full = LAST_PANIC
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_else(|| "unknown panic".into());
            let sig = full.lines().next().unwrap_or_default().to_string();
            (Some(sig), Some(full), Default::default())
        }
    }
}

fn hash_of(x: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    x.hash(&mut h);
    h.finish()
}

/// Save a crashing input once per signature: `<kind>-<sighash>.toml` and a `.txt` with details.
fn save_crash(dir: &Path, kind: &str, sig: &str, detail: &str, data: &[u8]) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let base = dir.join(format!("{kind}-{:016x}", hash_of(sig)));
    let toml = base.with_extension("toml");
    if toml.exists() {
        return None;
    }
    std::fs::write(&toml, data).ok()?;
    std::fs::write(
        base.with_extension("txt"),
        format!("signature: {sig}\n\n{detail}\n"),
    )
    .ok()?;
    Some(toml)
}

// ---------------------------------------------------------------------------------------------
// The worker: mutate, run, keep inputs with new outcomes, record panics.

fn load_seeds(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut files = vec![];
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_file())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            files.extend(v);
        } else {
            files.push(p.clone());
        }
    }
    let mut seeds: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
    if seeds.is_empty() {
        seeds.push(b"[services.api]\nfrom = \"python:3.12-slim\"\n".to_vec());
    }
    seeds
}

struct Worker<'a> {
    args: &'a Args,
    current: Option<File>,
    pool: Vec<Vec<u8>>,
    /// Pool entries that converted at least one target: half the parents come from here, so
    /// the fuzzer keeps reaching the planner and converter, not only the parser.
    good: Vec<Vec<u8>>,
    seen: HashSet<u64>,
    shapes: HashSet<String>,
    rng: Rng,
    iterations: u64,
    panics: u64,
    converted: u64,
}

impl Worker<'_> {
    fn handle(&mut self, data: Vec<u8>) {
        self.iterations += 1;
        if let Some(f) = self.current.as_mut() {
            let _ = f.set_len(0);
            let _ = f.write_all_at(&data, 0);
        }
        let (sig, full, outcome) = try_one(&data);
        if let Some(sig) = sig {
            self.panics += 1;
            let detail = full.unwrap_or_default();
            if let Some(p) = save_crash(&self.args.crashes, "panic", &sig, &detail, &data) {
                println!("crash {} {sig}", p.display());
                self.report("progress");
            }
            return;
        }
        self.converted += outcome.converted as u64;
        let mut fresh = false;
        for s in &outcome.shapes {
            if self.shapes.insert(s.clone()) {
                fresh = true;
            }
        }
        if self.seen.insert(hash_of(&outcome.shapes)) || fresh {
            let pool = if outcome.converted > 0 {
                &mut self.good
            } else {
                &mut self.pool
            };
            if pool.len() < 4096 {
                pool.push(data);
            } else {
                let i = self.rng.below(pool.len());
                pool[i] = data;
            }
        }
    }

    fn report(&self, what: &str) {
        println!(
            "{what} iterations={} panics={} pool={} shapes={} converted={}",
            self.iterations,
            self.panics,
            self.pool.len() + self.good.len(),
            self.shapes.len(),
            self.converted
        );
        let _ = std::io::stdout().flush();
    }
}

fn worker(args: &Args) {
    install_quiet_hook();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let seed_paths = if args.corpus.is_empty() {
        default_seed_paths()
    } else {
        args.corpus.clone()
    };
    let mut seeds = load_seeds(&seed_paths);
    seeds.retain(|s| !args.skip.contains(&hash_of(s)));
    if seeds.is_empty() {
        seeds.push(b"[services.api]\nfrom = \"python:3.12-slim\"\n".to_vec());
    }
    let current = args.current.as_ref().map(|p| {
        File::options()
            .create(true)
            .write(true)
            .truncate(true)
            .open(p)
            .expect("open --current")
    });
    let mut w = Worker {
        args,
        current,
        pool: vec![],
        good: vec![],
        seen: HashSet::new(),
        shapes: HashSet::new(),
        rng: Rng::new(args.seed ^ 0xA5A5),
        iterations: 0,
        panics: 0,
        converted: 0,
    };
    let mut m = Mutator::new(args.seed);
    for s in &seeds {
        w.handle(s.clone());
        // Seeds stay parents even when their outcome is not new.
        w.pool.push(s.clone());
    }
    let mut last_report = Instant::now();
    while Instant::now() < deadline {
        for _ in 0..64 {
            let parent = if !w.good.is_empty() && w.rng.chance(2) {
                &w.good[w.rng.below(w.good.len())]
            } else {
                &w.pool[w.rng.below(w.pool.len())]
            };
            let other = if w.rng.chance(2) {
                &seeds[w.rng.below(seeds.len())]
            } else {
                &w.pool[w.rng.below(w.pool.len())]
            };
            let child = m.mutate(parent, other);
            w.handle(child);
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            w.report("progress");
        }
    }
    w.report("done");
}

// ---------------------------------------------------------------------------------------------
// The supervisor: runs workers until the time is up, saves inputs that killed one.

fn field(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// The line of a dead worker's stderr that says what happened.
fn abort_signature(stderr: &str, status: &std::process::ExitStatus) -> String {
    let mut lines: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.contains("overflowed its stack")
                || l.contains("fatal runtime error")
                || l.contains("panicked at")
                || l.contains("memory allocation")
        })
        .collect();
    lines.dedup();
    let mut sig = lines
        .iter()
        .map(|l| {
            // Drop the thread id: `thread 'main' (1234) has overflowed its stack`.
            match (l.find('('), l.find(')')) {
                (Some(a), Some(b)) if b > a => format!("{}{}", &l[..a], &l[b + 1..]),
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" / ");
    if sig.is_empty() {
        sig = format!("{status}");
    }
    sig
}

fn supervise(args: &Args) -> ExitCode {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let exe = std::env::current_exe().expect("current exe");
    std::fs::create_dir_all(&args.crashes).expect("create --crashes dir");
    let current = args
        .crashes
        .join(format!(".current-{}", std::process::id()));
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    let mut aborts = 0u64;
    let mut abort_sigs: BTreeMap<String, u64> = BTreeMap::new();
    let mut panic_sigs: Vec<String> = vec![];
    let mut restarts = 0u64;
    let mut skip: Vec<u64> = vec![];
    println!(
        "fuzz-stack: {}s, seed {}, crashes in {}",
        args.seconds,
        args.seed,
        args.crashes.display()
    );
    while Instant::now() + Duration::from_secs(1) < deadline {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_secs()
            .max(1);
        let mut cmd = Command::new(&exe);
        cmd.args(["--worker", "--seconds", &left.to_string()])
            .args([
                "--seed",
                &(args.seed.wrapping_add(restarts * 7919)).to_string(),
            ])
            .arg("--crashes")
            .arg(&args.crashes)
            .arg("--current")
            .arg(&current)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for c in &args.corpus {
            cmd.arg("--corpus").arg(c);
        }
        for h in &skip {
            cmd.arg("--skip").arg(h.to_string());
        }
        let mut child = cmd.spawn().expect("spawn worker");
        let mut err = child.stderr.take().unwrap();
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        let mut last_print = Instant::now();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("progress") || line.starts_with("done") {
                for k in ["iterations", "panics", "pool", "shapes", "converted"] {
                    if let Some(v) = field(&line, k) {
                        last.insert(k, v);
                    }
                }
                if last_print.elapsed() >= Duration::from_secs(10) {
                    last_print = Instant::now();
                    let it = totals.get("iterations").unwrap_or(&0)
                        + last.get("iterations").unwrap_or(&0);
                    println!(
                        "[{:>5}s] iterations {it} ({:.0}/s), panics {}, aborts {aborts}, pool {}, shapes {}",
                        start.elapsed().as_secs(),
                        it as f64 / start.elapsed().as_secs_f64(),
                        totals.get("panics").unwrap_or(&0) + last.get("panics").unwrap_or(&0),
                        last.get("pool").unwrap_or(&0),
                        last.get("shapes").unwrap_or(&0),
                    );
                }
            } else if let Some(rest) = line.strip_prefix("crash ") {
                println!("new crash: {rest}");
                panic_sigs.push(rest.to_string());
            }
        }
        let status = child.wait().expect("wait worker");
        let stderr = err_thread.join().unwrap_or_default();
        for (k, v) in &last {
            if matches!(*k, "iterations" | "panics" | "converted") {
                *totals.entry(k).or_default() += v;
            } else {
                totals.insert(k, *v);
            }
        }
        if !status.success() {
            aborts += 1;
            restarts += 1;
            // The input that was running is in `current`; count the one that died too.
            *totals.entry("iterations").or_default() += 1;
            let data = std::fs::read(&current).unwrap_or_default();
            skip.push(hash_of(&data));
            let sig = abort_signature(&stderr, &status);
            let n = abort_sigs.entry(sig.clone()).or_default();
            *n += 1;
            let tail: String = stderr
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            let detail = format!(
                "status: {status} (signal {:?})\nstderr (tail):\n{tail}",
                status.signal()
            );
            if let Some(p) = save_crash(&args.crashes, "abort", &sig, &detail, &data) {
                println!("new crash: {} {sig}", p.display());
            }
            if aborts >= 1000 {
                println!("stopping: 1000 workers died");
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&current);
    let secs = start.elapsed().as_secs_f64();
    let it = totals.get("iterations").copied().unwrap_or(0);
    println!("--- fuzz-stack summary");
    println!("duration:     {secs:.0}s");
    println!("iterations:   {it} ({:.0}/s)", it as f64 / secs);
    println!(
        "converted:    {} target conversions",
        totals.get("converted").unwrap_or(&0)
    );
    println!("panics:       {}", totals.get("panics").unwrap_or(&0));
    println!("aborts:       {aborts} (worker restarts)");
    println!("pool:         {}", totals.get("pool").unwrap_or(&0));
    println!("shapes:       {}", totals.get("shapes").unwrap_or(&0));
    for s in &panic_sigs {
        println!("new panic:    {s}");
    }
    for (s, n) in &abort_sigs {
        println!("abort x{n}:    {s}");
    }
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// Reproduce and minimize.

fn run_files(files: &[PathBuf]) -> ExitCode {
    install_quiet_hook();
    let mut bad = false;
    for f in files {
        let data = match std::fs::read(f) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{}: {e}", f.display());
                return ExitCode::from(2);
            }
        };
        match try_one(&data) {
            (None, _, o) => println!("{}: ok ({} conversions)", f.display(), o.converted),
            (Some(sig), full, _) => {
                bad = true;
                println!("{}: PANIC {sig}", f.display());
                if let Some(full) = full {
                    eprintln!("{full}");
                }
            }
        }
    }
    if bad {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// How an input fails, run in a child process: None when it does not.
fn failure_of(exe: &Path, data: &[u8], scratch: &Path) -> Option<String> {
    std::fs::write(scratch, data).ok()?;
    let out = Command::new(exe).arg("--run").arg(scratch).output().ok()?;
    if out.status.success() {
        return None;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(3) {
        return stdout
            .lines()
            .find_map(|l| l.split_once(": PANIC ").map(|(_, s)| format!("panic {s}")));
    }
    Some(format!(
        "abort {}",
        abort_signature(&String::from_utf8_lossy(&out.stderr), &out.status)
    ))
}

fn minimize(path: &Path, out: Option<&Path>) -> ExitCode {
    let exe = std::env::current_exe().expect("current exe");
    let mut data = std::fs::read(path).expect("read input");
    let scratch = std::env::temp_dir().join(format!("fuzz-stack-min-{}.toml", std::process::id()));
    let Some(want) = failure_of(&exe, &data, &scratch) else {
        eprintln!("{}: does not fail", path.display());
        return ExitCode::from(1);
    };
    println!("signature: {want}");
    let mut tries = 0;
    let keep = |cand: &[u8], tries: &mut u32| {
        *tries += 1;
        failure_of(&exe, cand, &scratch).as_deref() == Some(want.as_str())
    };
    // Lines, then bytes: remove chunks of halving size while the failure stays the same.
    for unit in [Unit::Line, Unit::Byte] {
        let mut chunk = pieces(&data, unit).len().div_ceil(2).max(1);
        loop {
            let mut i = 0;
            while i < pieces(&data, unit).len() {
                let p = pieces(&data, unit);
                let end = (i + chunk).min(p.len());
                let cand: Vec<u8> = p[..i].iter().chain(&p[end..]).flatten().copied().collect();
                if keep(&cand, &mut tries) {
                    data = cand;
                } else {
                    i += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
    let _ = std::fs::remove_file(&scratch);
    let dest = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| path.with_extension("min.toml"));
    std::fs::write(&dest, &data).expect("write minimized input");
    println!(
        "minimized {} → {} bytes in {tries} runs: {}",
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        data.len(),
        dest.display()
    );
    let _ = std::io::stdout().flush();
    let mut f = File::open(&dest).expect("reopen");
    let _ = f.seek(SeekFrom::Start(0));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    println!("---\n{s}---");
    ExitCode::SUCCESS
}

#[derive(Clone, Copy)]
enum Unit {
    Line,
    Byte,
}

fn pieces(data: &[u8], unit: Unit) -> Vec<Vec<u8>> {
    match unit {
        Unit::Line => data
            .split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect(),
        Unit::Byte => data.iter().map(|b| vec![*b]).collect(),
    }
}
