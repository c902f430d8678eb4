//! `llb-bench [--services N] [--iters K] [--json]`: time what the frontend does per build —
//! parse stack.toml, plan one target, convert it to LLB (which marshals the graph into a
//! `pb::Definition`) and encode the Definition to bytes — for every service of a synthetic
//! stack modelled on examples/tax-agent (base-runtime → base-ml → ML services; two-stage venv
//! services on a `service-slim` layer), in process, with the options the frontend uses on
//! BuildKit 0.13 (MergeOp on, `--network=host`, `.dockerignore` patterns).
//!
//! Prints per-phase and per-target medians and the total for all targets (median over K
//! iterations; each iteration builds every target once).
//!
//! `llb-bench --scale [--services N] [--depth D] [--json]`: see [`scale`] (1,000 services and
//! a 200-deep chain by default).

mod scale;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use llb_gen::convert::{NoImages, convert};
use llb_gen::plan::{BuildOptions, ContextOptions, Network};
use llb_gen::source::SourceFile;
use prost::Message;

fn synthetic_stack(services: usize) -> (String, Vec<String>) {
    let mut s = String::from(
        r#"# syntax=layerstack:dev
[stack]
name = "synthetic"
description = "A synthetic stack for the LLB generation benchmark"

[args]
PYTHON_VERSION = "3.12"
REGISTRY = { default = "gitea.example.com", description = "Registry" }
OWNER = { default = "harkon", description = "Namespace" }
BASE_VERSION = { default = "v1.0.1", description = "Version" }

[stack.install-env]
PIP_DEFAULT_TIMEOUT = "60"

[layers.base-runtime]
from = "python:${PYTHON_VERSION}-slim"
apt = ["curl"]
user = { name = "appuser", uid = 1000 }
workdir = "/app"
env = { PYTHONUNBUFFERED = "1", PYTHONDONTWRITEBYTECODE = "1" }
requirements = ["libs/requirements-base.txt"]
labels = { "org.opencontainers.image.title" = "base-runtime", "org.opencontainers.image.version" = "${BASE_VERSION}", "org.opencontainers.image.vendor" = "${OWNER}" }

[layers.base-ml]
from = "base-runtime"
requirements = ["libs/requirements-ml.txt"]
labels = { "org.opencontainers.image.title" = "base-ml", "org.opencontainers.image.base.name" = "${REGISTRY}/${OWNER}/base-runtime:${BASE_VERSION}" }

[layers.service-slim]
from = "python:${PYTHON_VERSION}-slim"
user = { name = "appuser", uid = 1000 }
workdir = "/app"
env = { PYTHONUNBUFFERED = "1", PYTHONDONTWRITEBYTECODE = "1" }
healthcheck = { cmd = ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/healthz', timeout=3)"], interval = "30s", timeout = "5s", start-period = "10s", retries = 3 }
"#,
    );
    let mut names = vec![];
    for i in 0..services {
        let name = format!("svc-{i:02}");
        let module = format!("svc_{i:02}");
        if i % 3 == 2 {
            // A venv service, as svc-ingestion / svc-extract.
            s.push_str(&format!(
                r#"
[services.{name}]
description = "venv service {i}"
from = "service-slim"
requirements = ["libs/requirements-base.txt", "apps/{module}/requirements.txt"]
venv = {{ path = "/opt/venv" }}
copy = ["libs", "apps/{module}"]
cmd = ["uvicorn", "apps.{module}.main:app", "--host", "0.0.0.0", "--port", "8000"]
expose = [8000]
labels = {{ "org.opencontainers.image.title" = "{name}" }}
"#
            ));
        } else {
            // An ML service, as svc-ocr (every fifth with its own apt package).
            let apt = if i % 5 == 0 {
                "apt = [\"poppler-utils\"]\n"
            } else {
                ""
            };
            s.push_str(&format!(
                r#"
[services.{name}]
description = "ML service {i}"
from = "base-ml"
{apt}requirements = ["apps/{module}/requirements.txt"]
copy = ["libs", "apps/{module}"]
cmd = ["uvicorn", "apps.{module}.main:app", "--host", "0.0.0.0", "--port", "8000"]
expose = [8000]
healthcheck = {{ cmd = "curl -fsS http://localhost:8000/healthz || exit 1", interval = "30s", timeout = "5s", start-period = "10s", retries = 3 }}
labels = {{ "org.opencontainers.image.title" = "{name}", "org.opencontainers.image.base.name" = "${{REGISTRY}}/${{OWNER}}/base-ml:${{BASE_VERSION}}" }}
"#
            ));
        }
        names.push(name);
    }
    (s, names)
}

#[derive(Default, Clone, Copy)]
struct Phases {
    parse_plan: Duration,
    convert: Duration,
    encode: Duration,
    bytes: usize,
    ops: usize,
}

impl Phases {
    fn total(&self) -> Duration {
        self.parse_plan + self.convert + self.encode
    }
}

/// One target, as the frontend does it for one build: parse + plan, convert (+ marshal), encode.
fn one(file: &SourceFile, opts: &BuildOptions) -> Phases {
    let t0 = Instant::now();
    let (_, plan) = llb_gen::load(file, opts).unwrap_or_else(|e| {
        panic!("plan failed:\n{}", e.diagnostics.render(&e.file));
    });
    let t1 = Instant::now();
    let out = convert(&plan, opts, &NoImages, file).unwrap_or_else(|d| {
        panic!("convert failed:\n{}", d.render(file));
    });
    let t2 = Instant::now();
    let bytes = out.definition.encode_to_vec();
    let t3 = Instant::now();
    std::hint::black_box(&bytes);
    Phases {
        parse_plan: t1 - t0,
        convert: t2 - t1,
        encode: t3 - t2,
        bytes: bytes.len(),
        ops: out.definition.def.len(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let mut services = 50usize;
    let mut iters = 21usize;
    let mut json = false;
    let mut scale_mode = false;
    let mut depth = 200usize;
    let mut services_given = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--services" => {
                services = args.next().and_then(|v| v.parse().ok()).expect("--services N");
                services_given = true;
            }
            "--scale" => scale_mode = true,
            "--depth" => depth = args.next().and_then(|v| v.parse().ok()).expect("--depth D"),
            "--iters" => iters = args.next().and_then(|v| v.parse().ok()).expect("--iters K"),
            "--json" => json = true,
            "--bench" => {} // cargo bench passes it
            other => {
                eprintln!(
                    "usage: llb-bench [--services N] [--iters K] [--json] | --scale [--services N] [--depth D] [--json] (got `{other}`)"
                );
                std::process::exit(2);
            }
        }
    }
    if scale_mode {
        let services = if services_given { services } else { 1000 };
        scale::run(services, depth, json);
        return;
    }
    let (text, names) = synthetic_stack(services);
    let file = SourceFile::new("stack.toml".to_string(), text.clone());
    let base = BuildOptions {
        network: Network::Host,
        merge: true,
        context: ContextOptions {
            name: "context".into(),
            session_id: "bench".into(),
            exclude_patterns: vec!["**/__pycache__".into(), "**/*.pyc".into(), ".env".into(), "README.md".into()],
        },
        build_args: BTreeMap::new(),
        ..BuildOptions::default()
    };
    let opts: Vec<BuildOptions> = names
        .iter()
        .map(|n| BuildOptions {
            target: Some(n.clone()),
            ..base.clone()
        })
        .collect();
    // Warm-up (page in code, allocator).
    for o in &opts {
        one(&file, o);
    }
    // per_target[t][k]: target t in iteration k.
    let mut per_target: Vec<Vec<Phases>> = vec![vec![]; names.len()];
    let mut totals = vec![];
    for _ in 0..iters {
        let t0 = Instant::now();
        for (t, o) in opts.iter().enumerate() {
            per_target[t].push(one(&file, o));
        }
        totals.push(t0.elapsed());
    }
    let target_medians: Vec<Duration> = per_target
        .iter()
        .map(|v| median(v.iter().map(Phases::total).collect()))
        .collect();
    let phase = |f: fn(&Phases) -> Duration| {
        median(per_target.iter().flat_map(|v| v.iter().map(f)).collect())
    };
    let all_one: Vec<Duration> = per_target.iter().flat_map(|v| v.iter().map(Phases::total)).collect();
    let per_target_median = median(all_one);
    let per_target_max = *target_medians.iter().max().unwrap();
    let per_target_min = *target_medians.iter().min().unwrap();
    let total_median = median(totals.clone());
    let bytes: Vec<usize> = per_target.iter().map(|v| v[0].bytes).collect();
    let ops: Vec<usize> = per_target.iter().map(|v| v[0].ops).collect();
    if json {
        println!(
            "{{\"services\": {services}, \"iters\": {iters}, \"stack_bytes\": {}, \
             \"per_target_us\": {{\"median\": {:.1}, \"min_target_median\": {:.1}, \"max_target_median\": {:.1}, \
             \"parse_plan_median\": {:.1}, \"convert_marshal_median\": {:.1}, \"encode_median\": {:.1}}}, \
             \"total_all_targets_ms\": {{\"median\": {:.3}, \"min\": {:.3}, \"max\": {:.3}}}, \
             \"definition_bytes\": {{\"min\": {}, \"max\": {}}}, \"definition_ops\": {{\"min\": {}, \"max\": {}}}}}",
            text.len(),
            us(per_target_median),
            us(per_target_min),
            us(per_target_max),
            us(phase(|p| p.parse_plan)),
            us(phase(|p| p.convert)),
            us(phase(|p| p.encode)),
            total_median.as_secs_f64() * 1e3,
            totals.iter().min().unwrap().as_secs_f64() * 1e3,
            totals.iter().max().unwrap().as_secs_f64() * 1e3,
            bytes.iter().min().unwrap(),
            bytes.iter().max().unwrap(),
            ops.iter().min().unwrap(),
            ops.iter().max().unwrap(),
        );
    } else {
        println!("synthetic stack: {services} services + 3 layers, {} bytes of stack.toml", text.len());
        println!("iterations: {iters} (each: all {services} targets, one after another)");
        println!(
            "per target (parse+plan+convert+marshal+encode): median {:.0} µs (fastest target {:.0} µs, slowest {:.0} µs)",
            us(per_target_median),
            us(per_target_min),
            us(per_target_max)
        );
        println!(
            "  phases (median): parse+plan {:.0} µs, convert+marshal {:.0} µs, encode {:.0} µs",
            us(phase(|p| p.parse_plan)),
            us(phase(|p| p.convert)),
            us(phase(|p| p.encode))
        );
        println!(
            "all {services} targets: median {:.2} ms (min {:.2}, max {:.2})",
            total_median.as_secs_f64() * 1e3,
            totals.iter().min().unwrap().as_secs_f64() * 1e3,
            totals.iter().max().unwrap().as_secs_f64() * 1e3
        );
        println!(
            "definitions: {}–{} bytes, {}–{} ops",
            bytes.iter().min().unwrap(),
            bytes.iter().max().unwrap(),
            ops.iter().min().unwrap(),
            ops.iter().max().unwrap()
        );
    }
}
