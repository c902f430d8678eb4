//! Load on one engine: many builds of different targets of one stack at once, and concurrent
//! bakes of a generated many-service stack. Every build must succeed, every shared step must
//! run exactly once across all of them, concurrent apt and pip steps must not trip over each
//! other's locks, and the frontend processes' memory is reported.
//!
//! Sizes (the CI defaults are small enough for a few minutes on two cores; the full run
//! is 20 builds and 5 bakes of 50 services):
//!
//! * `LAYERSTACK_LOAD_BUILDS` — concurrent `docker buildx build`s, one target each (default 8;
//!   full run 20);
//! * `LAYERSTACK_LOAD_BAKES` — concurrent `docker buildx bake`s of one bake file (default 2;
//!   full run 5);
//! * `LAYERSTACK_LOAD_SERVICES` — services in the baked stack (default 50).
//!
//! "Solved once" is counted, not inferred from progress: every `run` step of the stacks calls
//! a counting HTTP server on 127.0.0.1 (`--network=host`) with its own path, so the server
//! sees each step exactly as often as BuildKit executed it. A nonce in the URL makes every
//! step new to the build cache, so each run of this test executes them.
//!
//! Memory: a sampler reads `/proc` every 100 ms for `layerstack-frontend` processes (the
//! frontend containers are processes of this machine) and prints the peak number at once,
//! the peak of their summed RSS and the largest single peak (VmHWM). Frontends of other builds
//! on the same engine at the same time are counted too: best effort.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::http::{self, Response};
use integration_tests::pyindex::{PackageIndex, Wheel};
use integration_tests::{Build, Context, Engine, Progress, exec, frontend_image, llb_gen};

fn engine(test: &str) -> Option<&'static Engine> {
    integration_tests::engine_with_frontend(test)
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

// --------------------------------------------------------------- counting --

/// An HTTP server on 127.0.0.1 that counts the paths it is asked for.
struct Hits {
    port: u16,
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Hits {
    fn serve() -> Hits {
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let c = counts.clone();
        let port = http::serve(move |_method, path| {
            *c.lock().unwrap().entry(path.to_string()).or_default() += 1;
            Response::ok("text/plain", "no-store", b"ok\n".to_vec())
        });
        Hits { port, counts }
    }

    fn count(&self, path: &str) -> usize {
        self.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// A `run` entry that asks the counting server for `${HIT}/NAME` (HIT is a stack arg).
fn hit(name: &str) -> String {
    format!(
        "\"python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1]).read()' \\\"${{HIT}}/{name}\\\"\""
    )
}

// ----------------------------------------------------------------- memory --

#[derive(Debug, Default, Clone)]
struct MemStats {
    samples: usize,
    /// Most frontend processes alive in one sample.
    peak_processes: usize,
    /// Largest sum of their VmRSS in one sample (KiB).
    peak_total_rss_kib: u64,
    /// Largest VmHWM (peak RSS) of any one of them (KiB).
    peak_single_kib: u64,
    /// Distinct frontend processes seen.
    seen: usize,
}

impl std::fmt::Display for MemStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "frontend processes: {} seen, at most {} at once; peak summed RSS {:.1} MiB, \
             largest single peak RSS {:.1} MiB ({} samples)",
            self.seen,
            self.peak_processes,
            self.peak_total_rss_kib as f64 / 1024.0,
            self.peak_single_kib as f64 / 1024.0,
            self.samples
        )
    }
}

/// Samples `/proc` for `layerstack-frontend` processes until stopped.
struct MemSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<MemStats>,
}

fn status_kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl MemSampler {
    fn start() -> MemSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut stats = MemStats::default();
            let mut seen = std::collections::BTreeSet::new();
            while !s.load(Ordering::Relaxed) {
                let (mut n, mut total) = (0usize, 0u64);
                for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let name = e.file_name();
                    let Some(pid) = name
                        .to_str()
                        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                    else {
                        continue;
                    };
                    let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
                    if !argv0.ends_with(b"layerstack-frontend") {
                        continue;
                    }
                    let status =
                        std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
                    n += 1;
                    total += status_kib(&status, "VmRSS:");
                    stats.peak_single_kib =
                        stats.peak_single_kib.max(status_kib(&status, "VmHWM:"));
                    seen.insert(pid.to_string());
                }
                stats.samples += 1;
                stats.peak_processes = stats.peak_processes.max(n);
                stats.peak_total_rss_kib = stats.peak_total_rss_kib.max(total);
                std::thread::sleep(Duration::from_millis(100));
            }
            stats.seen = seen.len();
            stats
        });
        MemSampler { stop, handle }
    }

    fn finish(self) -> MemStats {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("memory sampler")
    }
}

// ----------------------------------------------------------- engine race --

/// How BuildKit (runc executor, e.g. dockerd's) reports a gateway frontend whose gRPC
/// connection ended before the executor saw the process exit 0. The frontend closes its stdio
/// only by exiting, after its `Return`; under load BuildKit's `runc kill` on the cancelled
/// request ("container does not exist", in dockerd's log) can win against `runc run`'s own
/// exit, and the finished build fails with this message (moby/buildkit#991, #5811; any
/// frontend image). Builds that fail with exactly this are built again and counted; any other
/// failure fails the test.
const ENGINE_RACE: &str = "frontend grpc server closed unexpectedly";

/// Whether every `ERROR:` line buildx printed is the engine race.
fn lost_the_race(stderr: &str) -> bool {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("ERROR:")).collect();
    !errors.is_empty() && errors.iter().all(|l| l.contains(ENGINE_RACE))
}

// ------------------------------------------------------------------ locks --

/// What apt, dpkg and pip print when two of them fight over a lock or a cache.
const LOCK_ERRORS: &[&str] = &[
    "Could not get lock",
    "Unable to lock",
    "Unable to acquire the dpkg frontend lock",
    "is another process using it",
    "dpkg was interrupted",
    "Resource temporarily unavailable",
    "Errno 11",
];

fn lock_errors(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| LOCK_ERRORS.iter().any(|e| l.contains(e)))
        .map(|l| l.trim().to_string())
        .collect()
}

fn all_logs(p: &Progress) -> String {
    p.vertices.iter().map(|v| v.logs.as_str()).collect()
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

// ------------------------------------------------------------------ tests --

/// The shared layer every target starts from: its apt sources removed (so apt steps reach
/// nothing but local `.deb` files), a counted step, one package from the local index.
fn base_layer(index_url: &str) -> String {
    format!(
        "[layers.base]\n\
         from = \"python:3.12-slim\"\n\
         index-url = \"{index_url}\"\n\
         pip = [\"lsload-shared==1.0\"]\n\
         run = [\n  {{ cmd = \"rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*\", at = \"before-apt\" }},\n  {},\n]\n",
        hit("base")
    )
}

/// One build of the load: target, tag, how long it took, the build.
type Outcome = (String, String, Duration, Result<Build, Box<Build>>);

#[test]
fn concurrent_builds_of_different_targets_all_succeed_and_solve_shared_steps_once() {
    let test = "concurrent_builds_of_different_targets_all_succeed_and_solve_shared_steps_once";
    let Some(engine) = engine(test) else { return };
    let n = env_count("LAYERSTACK_LOAD_BUILDS", 8);
    let hits = Hits::serve();
    let nonce = integration_tests::nonce();
    let names: Vec<String> = (1..=n).map(|i| format!("svc{i:02}")).collect();
    let mut wheels = vec![Wheel::pure("lsload-shared", "1.0")];
    wheels.extend(
        names
            .iter()
            .map(|s| Wheel::pure(&format!("lsload-{s}"), "1.0")),
    );
    let index = PackageIndex::serve(&wheels);

    // Each target: the shared base, then its own apt step (a local .deb, under the locked apt
    // caches), its own pip step (under the shared pip cache) and a counted step.
    let mut stack = format!(
        "# syntax={}\n[args]\nHIT = \"http://127.0.0.1:{}/{nonce}\"\n\n{}",
        frontend_image(),
        hits.port,
        base_layer(&index.url())
    );
    for s in &names {
        let m = format!("lsload_{s}");
        stack.push_str(&format!(
            "\n[services.{s}]\nfrom = \"base\"\napt = [\"./debs/lsload-{s}_1.0_all.deb\"]\n\
             index-url = \"{}\"\npip = [\"lsload-{s}==1.0\"]\nrun = [{}]\n\
             cmd = [\"sh\", \"-c\", \"python3 -c 'import lsload_shared, {m}; print(lsload_shared.__version__, {m}.__version__)' && lsload-{s}\"]\n",
            index.url(),
            hit(s)
        ));
    }
    let ctx = Context::new().file("stack.toml", &stack);
    for s in &names {
        integration_tests::deb::Deb {
            package: &format!("lsload-{s}"),
            depends: None,
            prints: &format!("{s}-tool-ok"),
        }
        .build(&ctx.path().join(format!("debs/lsload-{s}_1.0_all.deb")));
    }
    let file = ctx.join("stack.toml");

    let sampler = MemSampler::start();
    let t0 = Instant::now();
    let results: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|s| {
                let (file, ctx) = (&file, &ctx);
                scope.spawn(move || {
                    let tag = engine.unique_tag(&format!("load-{s}"));
                    let t = Instant::now();
                    let r = engine.try_buildx_build(&[
                        "--network=host",
                        "-f",
                        file,
                        "--target",
                        s,
                        "-t",
                        &tag,
                        ctx.path_str(),
                    ]);
                    (s.clone(), tag, t.elapsed(), r)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = t0.elapsed();
    let mem = sampler.finish();
    let times: Vec<Duration> = results.iter().map(|r| r.2).collect();
    eprintln!(
        "load: {n} concurrent builds of different targets in {} (each {} to {})\nload: {mem}",
        secs(wall),
        secs(*times.iter().min().unwrap()),
        secs(*times.iter().max().unwrap()),
    );

    // A build that lost BuildKit's frontend-exit race (see ENGINE_RACE) is built once more,
    // alone; everything it solved is in the cache by then, so no step runs again.
    let _tagged = engine.tagged(results.iter().map(|r| r.1.clone()));
    let mut results = results;
    let mut races = 0;
    for (s, tag, _, r) in results.iter_mut() {
        if r.as_ref()
            .err()
            .is_some_and(|b| lost_the_race(&b.output.stderr))
        {
            races += 1;
            eprintln!(
                "load: {s}: {ENGINE_RACE} (BuildKit's frontend-exit race); building it again"
            );
            *r = engine.try_buildx_build(&[
                "--network=host",
                "-f",
                &file,
                "--target",
                s,
                "-t",
                tag,
                ctx.path_str(),
            ]);
        }
    }
    let mut failures = vec![];
    let mut locks = vec![];
    for (s, tag, _, r) in &results {
        match r {
            Ok(b) => {
                locks.extend(
                    lock_errors(&all_logs(&b.progress))
                        .into_iter()
                        .map(|l| format!("{s}: {l}")),
                );
                let out = engine.docker_run(tag, &[]);
                assert_eq!(
                    out.split_whitespace().collect::<Vec<_>>(),
                    ["1.0", "1.0", &format!("{s}-tool-ok")],
                    "{s}: {out}"
                );
            }
            Err(b) => failures.push(format!("{s}:\n{}", b.failure_report())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} builds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(locks.is_empty(), "lock errors:\n{}", locks.join("\n"));
    // Solved once: the shared step ran once for all the builds, each target's step once.
    let prefix = format!("/{nonce}");
    assert_eq!(
        hits.count(&format!("{prefix}/base")),
        1,
        "the shared base step ran {} times",
        hits.count(&format!("{prefix}/base"))
    );
    for s in &names {
        assert_eq!(hits.count(&format!("{prefix}/{s}")), 1, "{s}'s step");
    }
    eprintln!(
        "load: shared step executed 1 time for {n} builds; lsload-shared downloaded {} time(s); \
         {races} build(s) lost BuildKit's frontend-exit race and were built again",
        index.downloads("lsload_shared-1.0-py3-none-any.whl")
    );
}

#[test]
fn concurrent_bakes_of_a_many_service_stack_all_succeed_and_solve_shared_steps_once() {
    let test = "concurrent_bakes_of_a_many_service_stack_all_succeed_and_solve_shared_steps_once";
    let Some(engine) = engine(test) else { return };
    let bakes = env_count("LAYERSTACK_LOAD_BAKES", 2);
    let services = env_count("LAYERSTACK_LOAD_SERVICES", 50);
    let hits = Hits::serve();
    let index = PackageIndex::serve(&[Wheel::pure("lsload-shared", "1.0")]);
    let nonce = integration_tests::nonce();
    let tag_prefix = format!("layerstack-test/load-bake-{}", std::process::id());
    let mut stack = format!(
        "# syntax={}\n[stack]\ntags = [\"{tag_prefix}-${{NAME}}:${{HASH}}\"]\n\
         [args]\nHIT = \"http://127.0.0.1:{}/{nonce}\"\n\n{}",
        frontend_image(),
        hits.port,
        base_layer(&index.url())
    );
    let names: Vec<String> = (1..=services).map(|i| format!("s{i:03}")).collect();
    for s in &names {
        stack.push_str(&format!(
            "\n[services.{s}]\nfrom = \"base\"\nenv = {{ SERVICE = \"{s}\" }}\nrun = [{}]\ncmd = [\"sh\", \"-c\", \"echo $SERVICE\"]\n",
            hit(s)
        ));
    }
    let ctx = Context::new().file("stack.toml", &stack);
    // The counted steps call 127.0.0.1: `--network host` puts every target on the host
    // network (buildx before 0.17 reads that only from the compose form, docs §25). Each bake
    // tags its own names (`…-bN-NAME`): two builds exporting the same tag at once can fail in
    // the engine's image store with `image "…": already exists` (docker/buildx#3576),
    // whatever the frontend.
    let bake = llb_gen(&["bake", "stack.toml", "--network", "host"], ctx.path());
    let compose = llb_gen(
        &[
            "bake",
            "stack.toml",
            "--network",
            "host",
            "--format",
            "compose",
        ],
        ctx.path(),
    );
    let plan: serde_json::Value = serde_json::from_str(&bake).expect("bake JSON");
    let mine = |text: &str, b: usize| {
        text.replace(&format!("{tag_prefix}-"), &format!("{tag_prefix}-b{b}-"))
    };
    let old_buildx = engine.buildx_version() < (0, 17);
    let mut files: Vec<Vec<String>> = vec![];
    for b in 0..bakes {
        let json = format!("docker-bake-{b}.json");
        std::fs::write(ctx.path().join(&json), mine(&bake, b)).unwrap();
        let mut args = vec!["-f".to_string(), json];
        if old_buildx {
            let yml = format!("docker-bake-{b}.network.yml");
            std::fs::write(ctx.path().join(&yml), mine(&compose, b)).unwrap();
            args.extend(["-f".to_string(), yml]);
        } else {
            // buildx 0.17 and later ask for the host network's entitlement.
            args.extend(["--allow".to_string(), "network.host".to_string()]);
        }
        files.push(args);
    }
    let _tagged = engine.tagged((0..bakes).flat_map(|b| {
        names
            .iter()
            .map(|s| mine(plan["target"][s]["tags"][0].as_str().unwrap(), b))
            .collect::<Vec<_>>()
    }));
    let targets = plan["group"]["default"]["targets"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(targets, services, "{bake}");

    let sampler = MemSampler::start();
    let t0 = Instant::now();
    let bake = |args: &[String]| -> integration_tests::Output {
        let mut cmd = engine.docker(["buildx", "bake", "--progress=rawjson"]);
        cmd.args(args).current_dir(ctx.path());
        exec(&mut cmd, Some(Duration::from_secs(20 * 60))).expect("docker buildx bake runs")
    };
    let outs: Vec<(Duration, integration_tests::Output)> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .iter()
            .map(|args| {
                let bake = &bake;
                scope.spawn(move || {
                    let t = Instant::now();
                    let out = bake(args);
                    (t.elapsed(), out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = t0.elapsed();
    let mem = sampler.finish();
    eprintln!(
        "load: {bakes} concurrent bakes of {services} services ({} builds) in {} (each {})\nload: {mem}",
        bakes * services,
        secs(wall),
        outs.iter()
            .map(|o| secs(o.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let describe = |i: usize, out: &integration_tests::Output| -> String {
        let steps: Vec<String> = Progress::parse(&out.stderr)
            .errors()
            .iter()
            .map(|v| format!("  step {}: {}", v.name, v.error.as_deref().unwrap_or("")))
            .collect();
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("ERROR:"))
            .collect();
        format!(
            "bake {i} ({}):\n{}\n{}",
            out.status,
            errors.join("\n"),
            steps.join("\n")
        )
    };
    let mut locks = vec![];
    let mut failed_bakes = vec![];
    let mut raced = vec![];
    for (i, (_, out)) in outs.iter().enumerate() {
        locks.extend(lock_errors(&all_logs(&Progress::parse(&out.stderr))));
        if out.status.success() {
            continue;
        }
        if lost_the_race(&out.stderr) {
            eprintln!(
                "load: {}",
                describe(i, out)
                    .lines()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            raced.push(i);
        } else {
            failed_bakes.push(describe(i, out));
        }
    }
    assert!(
        failed_bakes.is_empty(),
        "{} of {bakes} bakes failed:\n{}",
        failed_bakes.len(),
        failed_bakes.join("\n")
    );
    assert!(locks.is_empty(), "lock errors:\n{}", locks.join("\n"));
    // Solved once, counted before any bake runs again. A bake that lost the race may have
    // cancelled the shared step before it ran (every bake lost it once on dockerd 26): then it
    // runs when the bake is repeated, below.
    let prefix = format!("/{nonce}");
    let base_runs = hits.count(&format!("{prefix}/base"));
    if raced.is_empty() {
        assert_eq!(
            base_runs,
            1,
            "the shared base step ran {base_runs} times for {} builds",
            bakes * services
        );
    } else {
        assert!(
            base_runs <= 1,
            "the shared base step ran {base_runs} times for {} builds",
            bakes * services
        );
    }
    let counts: Vec<(&String, usize)> = names
        .iter()
        .map(|s| (s, hits.count(&format!("{prefix}/{s}"))))
        .collect();
    let not_once: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n != 1)
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    if raced.is_empty() {
        assert!(
            not_once.is_empty(),
            "steps not run exactly once across {bakes} bakes: {not_once:?}"
        );
    } else {
        // A bake that lost the race cancelled its other builds (buildx does); a step cancelled
        // in every bake that wanted it did not finish, and runs again when a bake is repeated.
        // Never twice at once, and never more than that.
        assert!(
            counts.iter().all(|(_, n)| *n <= 2),
            "a step ran more than twice: {not_once:?}"
        );
        eprintln!(
            "load: {} of {bakes} bakes lost BuildKit's frontend-exit race ({ENGINE_RACE}) and \
             cancelled their other builds; steps not run exactly once so far: {not_once:?}; baking \
             those again, one at a time",
            raced.len()
        );
        for &i in &raced {
            let again = (0..3)
                .map(|_| bake(&files[i]))
                .find(|o| o.status.success() || !lost_the_race(&o.stderr));
            match again {
                Some(o) if o.status.success() => {}
                Some(o) => panic!("bake {i}, again: {}", describe(i, &o)),
                None => panic!("bake {i} lost the race three more times"),
            }
        }
        let wrong: Vec<String> = names
            .iter()
            .map(|s| (s, hits.count(&format!("{prefix}/{s}"))))
            .filter(|(_, n)| !(1..=2).contains(n))
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        assert!(wrong.is_empty(), "after the bakes were repeated: {wrong:?}");
        let base_runs = hits.count(&format!("{prefix}/base"));
        assert!(
            (1..=2).contains(&base_runs),
            "after the bakes were repeated, the shared base step ran {base_runs} times"
        );
    }
    let counts: Vec<usize> = names
        .iter()
        .map(|s| hits.count(&format!("{prefix}/{s}")))
        .collect();
    // Every service tagged by every bake, and right.
    for b in 0..bakes {
        for (i, s) in names.iter().enumerate() {
            let tag = mine(plan["target"][s]["tags"][0].as_str().unwrap(), b);
            if i % 10 == 0 {
                assert_eq!(engine.docker_run(&tag, &[]).trim(), s.as_str());
            } else {
                assert!(engine.image_exists(&tag), "{tag}");
            }
        }
    }
    eprintln!(
        "load: {} run steps for {} builds: the shared one ran once, {} of {services} per-service \
         ones exactly once ({} bake(s) lost the frontend-exit race and were repeated)",
        services + 1,
        bakes * services,
        counts.iter().filter(|n| **n == 1).count(),
        raced.len()
    );
}
