#!/usr/bin/env python3
"""bench/run.py — layerstack vs the seeds' own hand-written Dockerfiles (examples/tax-agent).

Runs, in ONE invocation on ONE engine, the same scenarios for

  ref       bench/tax-agent-reference/build.sh: seed 001's way — base-runtime, then base-ml,
            then each of the 5 services, one `docker buildx build` after another, with seed
            004's cache mounts (7 builds, 7 tagged images);
  ls-bake   layerstack, all 5 services at once: `llb-gen bake` → `docker buildx bake`
            (one session, shared vertices solved once, targets concurrently). buildx 0.13.1's
            bake drops the bake file's `network` attribute, so the targets of `llb-gen bake`
            are handed to bake as a compose file, whose `build.network: host` it honours;
  ls-seq    layerstack, the 5 services one after another with `docker buildx build`;

and reports seconds per scenario (median of N runs), layerstack's better mode and the ratio
layerstack / reference. It also times LLB generation for a synthetic 50-service stack
(bench/llb-bench), reports the frontend image size, and the frontend's overhead per build (a
trivial stack through `# syntax=` vs the same image from a trivial Dockerfile).

Scenarios (in this order; each starts from a fully built state except cold):
  cold       every build step misses the build cache (see "How cold is cold" below)
  noop       rebuild everything, nothing changed
  code       one service's code changed (apps/svc_rag_retriever/main.py)
  svc-req    one service's requirements changed (apps/svc_rag_retriever/requirements.txt
             gets one more small package)
  base-req   base-ml's requirements changed (libs/requirements-ml.txt gets one more package)

How cold is cold (no global prune by default; other people use this engine):
  * A per-measurement nonce, BENCH_NONCE, is in the env of EVERY command step of both
    implementations: the reference's Dockerfiles declare `ARG BENCH_NONCE` in every stage
    (an ARG is in the env, hence the cache key, of every later RUN), and the temp copy of the
    stack gets `BENCH_NONCE = "${BENCH_NONCE}"` in the `env` of its two root layers
    (base-runtime, service-slim), which every image inherits and every command step (apt,
    useradd, pip, `python -m venv`) runs with. Every RUN/exec misses, and so does every file
    step after it. The base image itself is not rebuilt (it is a local image for both).
    What stays cached for layerstack: file steps that depend on no command step — the
    services' copies onto scratch (MergeOp) and the staging of requirements files. That is
    the design (they do not depend on any base); they take ~0.05 s each.
  * Download caches (BuildKit cache mounts for pip and apt) stay WARM for both: they are
    kept across builds by design (seed 004), and layerstack's ids are fixed and shared with
    everyone on the engine, so they cannot be made private to one run. Cold therefore means
    "empty build cache, warm package caches" — what a CI runner with persistent cache mounts
    sees after a base image change.
  * BENCH_ALLOW_PRUNE=1 additionally runs `docker buildx prune -f --filter
    type=exec.cachemount` before each cold measurement. That is GLOBAL: it empties every cache
    mount on the engine, other people's too. Off unless you set it; the output says so.

Fairness:
  * Both sides build from the same temp copy of examples/tax-agent (never the repository), use
    the same python slim image pinned at start (other people re-create python:3.12-slim with
    scripts/base-images.sh while we run, and it removes the image the tag pointed at before),
    `--network=host`, default provenance, and tag every image under layerstack-bench/.
  * The layerstack frontend is pinned too. Each pin is `FROM <image>` + one label, built as
    layerstack-bench/{python,frontend}:…RUNID (own image id, same layers and entrypoint); the
    temp stack's `# syntax=` and both sides' python base name the pins.
  * ls-bake and ls-seq use different nonces, so they have separate cache chains and never
    see each other's results.
  * The order of implementations rotates from one repetition to the next.

Usage:
  eval "$(scripts/engine.sh)"   # optional: run.py loads the engine env itself
  python3 bench/run.py                      # everything (~16 min on 2 shared cores)
  python3 bench/run.py --runs 1 --scenarios noop,code --skip-llb --skip-frontend
Options: --runs N (5), --cold-runs N (3), --base-req-runs N (3), --base-req-seq-runs N (3),
  --no-cold-seq,
  --scenarios LIST, --out DIR, --llb-iters N (51), --overhead-runs N (9), --keep-images,
  --report-only DIR (re-read an earlier run's logs, rewrite its results.md).
"""

import argparse
import datetime as dt
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
REF_DIR = BENCH / "tax-agent-reference"
EXAMPLE = REPO / "examples" / "tax-agent"
SERVICES = ["svc-ocr", "svc-rag-indexer", "svc-rag-retriever", "svc-ingestion", "svc-extract"]
SCENARIOS = ["cold", "noop", "code", "svc-req", "base-req"]
# Small pure-Python wheels that nothing in the example installs; one new one per repetition,
# so every repetition is a real change BuildKit has never seen (reverting would be a cache hit).
SVC_PKGS = ["toolz==1.0.0", "tabulate==0.9.0", "text-unidecode==1.3", "more-itertools==10.5.0", "cachetools==5.5.0"]
ML_PKGS = ["threadpoolctl==3.5.0", "joblib==1.4.2", "tqdm==4.67.1", "wcwidth==0.2.13", "pyparsing==3.2.0"]
TARGET_DIR = Path(os.environ.get("BENCH_TARGET_DIR", "/tmp/layerstack-bench-target"))


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd, **kw):
    """Run, fail loudly. Returns CompletedProcess (text)."""
    kw.setdefault("text", True)
    kw.setdefault("capture_output", True)
    p = subprocess.run(cmd, **kw)
    if p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr[-4000:]}")
    return p


def load_engine_env(script="engine.sh"):
    """Start (or reuse) the engine of scripts/SCRIPT and take its exported env."""
    out = sh([str(REPO / "scripts" / script)]).stdout
    for line in out.splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            os.environ[k] = shlex.split(v)[0] if v else ""


def loadavg():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return None


# ------------------------------------------------------------------ progress ---

def parse_ts(s):
    # RFC 3339 with nanoseconds → datetime (microseconds).
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        return None
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{tz}")


def parse_rawjson(text):
    """buildx --progress=rawjson (JSON objects, one after another, between plain lines) →
    list of builds; a build is a list of vertices {name, cached, started, completed, error}.
    A plain line `ref: NAME N.NNs` (build.sh) ends a build."""
    builds, cur, order = [], {}, []
    dec = json.JSONDecoder()
    i, n = 0, len(text)

    def close(label=None):
        nonlocal cur, order
        if cur:
            builds.append({"label": label, "vertices": [cur[d] for d in order]})
        cur, order = {}, []

    while i < n:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        if text[i] == "{":
            try:
                obj, j = dec.raw_decode(text, i)
            except json.JSONDecodeError:
                obj, j = None, text.find("\n", i)
                j = n if j < 0 else j
            if isinstance(obj, dict):
                for v in obj.get("vertexes") or []:
                    d = v.get("digest")
                    if not d:
                        continue
                    if d not in cur:
                        cur[d] = {"name": "", "cached": False, "started": None, "completed": None, "error": None}
                        order.append(d)
                    e = cur[d]
                    if v.get("name"):
                        e["name"] = v["name"]
                    e["cached"] |= bool(v.get("cached"))
                    for k in ("started", "completed"):
                        if v.get(k):
                            e[k] = v[k]
                    if v.get("error"):
                        e["error"] = v["error"]
            i = j
            continue
        j = text.find("\n", i)
        j = n if j < 0 else j
        line = text[i:j].strip()
        m = re.match(r"^ref: (\S+) ([\d.]+)s$", line)
        if m:
            close(m.group(1))
        i = j + 1
    close("last")
    return builds


def vertex_seconds(v):
    if not v["started"] or not v["completed"]:
        return 0.0
    a, b = parse_ts(v["started"]), parse_ts(v["completed"])
    return max(0.0, (b - a).total_seconds()) if a and b else 0.0


BAKE_PREFIX = re.compile(r"^\[(" + "|".join(map(re.escape, SERVICES)) + r")(?:\] | )")


def normalize(name):
    """Drop bake's target prefix: `[svc-ocr internal] x` → `[internal] x`, `[svc-ocr] x` → `x`,
    `[svc-ocr layer base-ml 1/1] x` → `[layer base-ml 1/1] x`."""
    m = BAKE_PREFIX.match(name)
    if not m:
        return name
    rest = name[m.end():]
    return rest if m.group(0).endswith("] ") else "[" + rest


def kind(name):
    """work (an exec or file step of the build), context (sending files), export, or meta
    (frontend, definitions, image metadata)."""
    if re.match(r"^(exporting to|exporting|naming to|unpacking to|writing image)", name):
        return "export"
    if name.startswith("local://") or name == "[internal] load build context" or " load context " in name:
        return "context"
    if re.match(r"^\[(layer|service|stage-|builder|[a-z0-9-]+ \d+/\d+\]|[a-z0-9-]+\])", name) and \
            not name.startswith("[internal]") and " from docker.io/" not in name and not re.match(r"^\[[^\]]*\] FROM ", name):
        return "work"
    return "meta"


def summarize(builds, per_build_wall=None):
    """Executed (not cached) steps by kind, and per build: engine-side span, time before the
    first `load metadata` (the frontend phase), context transfer, export."""
    executed, cached, total = [], 0, 0
    spans, pre, ctx_s, exp_s = 0.0, 0.0, 0.0, 0.0
    for b in builds:
        # The build starts at its first reported vertex (a cached vertex can carry the
        # timestamps of an older build, so min() over all of them would be wrong).
        starts, ends, meta_starts = [], [], []
        for v in b["vertices"]:
            total += 1
            name = normalize(v["name"])
            a = parse_ts(v["started"]) if v["started"] else None
            z = parse_ts(v["completed"]) if v["completed"] else None
            if a:
                starts.append(a)
                if name.startswith("[internal] load metadata for"):
                    meta_starts.append(a)
            if z and not v["cached"]:
                ends.append(z)
            if v["cached"]:
                cached += 1
                continue
            if not a:
                continue
            k, s = kind(name), vertex_seconds(v)
            if k == "context":
                ctx_s += s
            elif k == "export":
                exp_s += s
            executed.append({"build": b["label"], "name": name, "kind": k, "s": round(s, 2)})
        if starts and ends:
            spans += max(0.0, (max(ends) - starts[0]).total_seconds())
            if meta_starts:
                pre += max(0.0, (min(meta_starts) - starts[0]).total_seconds())
    work = [e for e in executed if e["kind"] == "work"]
    out = {
        "builds": len(builds),
        "vertices": total,
        "cached": cached,
        "executed": executed,
        "n_work_steps": len(work),
        "work_step_seconds": round(sum(e["s"] for e in work), 2),
        "export_seconds": round(exp_s, 2),
        "context_seconds": round(ctx_s, 2),
        "engine_span_seconds": round(spans, 2),
        "pre_metadata_seconds": round(pre, 2),
    }
    return out


# ------------------------------------------------------------ implementations ---

class Bench:
    def __init__(self, args):
        self.args = args
        self.rid = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self.out = Path(args.out or f"/tmp/layerstack-bench-{self.rid}")
        self.ctx = self.out / "ctx"
        self.frontend = f"layerstack-bench/frontend:{self.rid}"
        self.python = f"layerstack-bench/python:3.12-slim-{self.rid}"
        self.ref_owner = f"ref-{self.rid}"
        self.ls_repo = f"layerstack-bench/ls-{self.rid}"
        self.tags = []  # every tag we created (removed at the end unless --keep-images)
        self.nonce = {}  # implementation → the nonce of its current fully built state
        self.results = {"run_id": self.rid, "measurements": [], "facts": {}}
        self.llb_gen = TARGET_DIR / "release" / "llb-gen"
        self.pruned = False

    # -- setup --
    def setup(self):
        self.out.mkdir(parents=True, exist_ok=True)
        load_engine_env()
        f = self.results["facts"]
        f["dockerd"] = sh(["docker", "version", "--format", "{{.Server.Version}}"]).stdout.strip()
        f["buildx"] = sh(["docker", "buildx", "version"]).stdout.strip()
        f["nproc"] = os.cpu_count()
        f["kernel"] = os.uname().release
        f["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        f["git_head"] = sh(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]).stdout.strip()
        f["loadavg_start"] = open("/proc/loadavg").read().strip()
        # Pin the frontend and the python base: other people rebuild both while we run, and
        # scripts/base-images.sh removes the image python:3.12-slim pointed at before (which
        # takes a plain second tag with it). So each pin is a derived image with its own id:
        # FROM the image + one label (same layers, same entrypoint; single platform).
        for src, dst in (("layerstack:dev", self.frontend), ("python:3.12-slim", self.python)):
            d = self.out / "pin" / dst.split(":")[0].split("/")[-1]
            d.mkdir(parents=True, exist_ok=True)
            (d / "Dockerfile").write_text(f"FROM {src}\nLABEL org.layerstack.bench.pin={self.rid}\n")
            sh(["docker", "buildx", "build", "--network=none", "--provenance=false", "-t", dst, str(d)])
            self.tags.append(dst)
        insp = json.loads(sh(["docker", "image", "inspect", "layerstack:dev"]).stdout)[0]
        f["frontend_image"] = {"id": insp["Id"], "created": insp.get("Created"), "size_bytes": insp.get("Size")}
        f["frontend_size_bytes"] = int(sh(["docker", "image", "inspect", "layerstack:dev", "--format", "{{.Size}}"]).stdout.strip())
        f["python_image_id"] = json.loads(sh(["docker", "image", "inspect", self.python]).stdout)[0]["Id"]
        # The temp copy of the example: pinned frontend and python, BENCH_NONCE everywhere.
        shutil.copytree(EXAMPLE, self.ctx)
        st = (self.ctx / "stack.toml").read_text()
        st = re.sub(r"^# syntax=.*$", f"# syntax={self.frontend}", st, count=1, flags=re.M)
        st = st.replace('from = "python:${PYTHON_VERSION}-slim"', f'from = "{self.python}"')
        st = st.replace("[args]\n", '[args]\nBENCH_NONCE = ""\n', 1)
        # The nonce goes into `env` of the two root layers (base-runtime, service-slim): env is
        # inherited and is the env of every command step of every image (useradd and
        # `python -m venv` included). `[stack] install-env` would not do: it reaches only the
        # install steps (apt, run, pip), so useradd and `python -m venv` would stay cached.
        root_env = 'env = { PYTHONUNBUFFERED = "1", PYTHONDONTWRITEBYTECODE = "1" }'
        assert st.count(root_env) == 2, "stack.toml patch failed (root layers' env)"
        st = st.replace(root_env, 'env = { BENCH_NONCE = "${BENCH_NONCE}", PYTHONUNBUFFERED = "1", PYTHONDONTWRITEBYTECODE = "1" }')
        assert st.count(self.python) == 2, "stack.toml patch failed (python image)"
        (self.ctx / "stack.toml").write_text(st)
        self.orig = {p: (self.ctx / p).read_text() for p in
                     ("apps/svc_rag_retriever/main.py", "apps/svc_rag_retriever/requirements.txt", "libs/requirements-ml.txt")}
        if not self.llb_gen.exists() or self.args.rebuild_tools:
            log("building llb-gen (release) into " + str(TARGET_DIR))
            sh(["cargo", "build", "--release", "--locked", "-p", "llb-gen", "--target-dir", str(TARGET_DIR)], cwd=REPO)
        log(f"run {self.rid}: out {self.out}; frontend {self.frontend} = {f['frontend_image']['id'][:19]}; "
            f"python {self.python} = {f['python_image_id'][:19]}")

    # -- the three implementations; each returns (seconds, builds, per_build_seconds) --
    def build_ref(self, nonce, logf):
        env = dict(os.environ, REGISTRY="layerstack-bench", OWNER=self.ref_owner, BASE_VERSION="v1.0.1",
                   PYTHON_IMAGE=self.python, PROGRESS="rawjson")
        t0 = time.monotonic()
        p = subprocess.run(["bash", str(REF_DIR / "build.sh"), str(self.ctx), "--",
                            "--build-arg", f"BENCH_NONCE={nonce}"],
                           env=env, text=True, capture_output=True)
        secs = time.monotonic() - t0
        logf.write_text(p.stderr)
        if p.returncode:
            raise SystemExit(f"reference build failed, see {logf}\n{p.stderr[-3000:]}")
        per = {m.group(1): float(m.group(2)) for m in re.finditer(r"^ref: (\S+) ([\d.]+)s$", p.stderr, re.M)}
        for name in per:
            t = f"layerstack-bench/{self.ref_owner}/{name}:v1.0.1"
            if t not in self.tags:
                self.tags.append(t)
        return secs, parse_rawjson(p.stderr), per

    def build_ls_bake(self, nonce, logf):
        t0 = time.monotonic()
        bake = sh([str(self.llb_gen), "bake", str(self.ctx / "stack.toml"), "--context", str(self.ctx),
                   "--network", "host", "--build-arg", f"BENCH_NONCE={nonce}"]).stdout
        d = json.loads(bake)
        (self.out / "docker-bake.json").write_text(bake)
        # buildx 0.13.1's bake has no `network` attribute: the `"network": "host"` that
        # `llb-gen bake --network host` writes is silently dropped, and in the sandbox network
        # pip cannot reach PyPI here. Its compose reader does honour `build.network`, so the
        # same targets (context, stack file, target, args) go to bake as a compose file: still
        # one `docker buildx bake`, one session, all services concurrently.
        services = {}
        for t in d["group"]["default"]["targets"]:
            x = d["target"][t]
            tag = f"{self.ls_repo}/{t}:v1.0.1"
            if tag not in self.tags:
                self.tags.append(tag)
            services[t] = {"image": tag, "build": {"context": x["context"], "dockerfile": x["dockerfile"],
                                                   "target": x["target"], "network": "host",
                                                   "args": x.get("args", {})}}
        bf = self.out / "compose.yaml"  # JSON is YAML
        bf.write_text(json.dumps({"services": services}, indent=2))
        p = subprocess.run(["docker", "buildx", "bake", "--progress=rawjson", "-f", str(bf)],
                           cwd=self.out, text=True, capture_output=True)
        secs = time.monotonic() - t0
        logf.write_text(p.stderr)
        if p.returncode:
            raise SystemExit(f"bake failed, see {logf}\n{p.stderr[-3000:]}")
        return secs, parse_rawjson(p.stderr), {}

    def build_ls_seq(self, nonce, logf):
        per, text = {}, []
        t0 = time.monotonic()
        for s in SERVICES:
            tag = f"{self.ls_repo}-seq/{s}:v1.0.1"
            if tag not in self.tags:
                self.tags.append(tag)
            t1 = time.monotonic()
            p = subprocess.run(["docker", "buildx", "build", "--network=host", "--progress=rawjson",
                                "-f", str(self.ctx / "stack.toml"), "--target", s,
                                "--build-arg", f"BENCH_NONCE={nonce}", "-t", tag, str(self.ctx)],
                               text=True, capture_output=True)
            per[s] = round(time.monotonic() - t1, 2)
            text.append(p.stderr + f"\nref: {s} {per[s]:.2f}s\n")
            if p.returncode:
                logf.write_text("".join(text))
                raise SystemExit(f"layerstack build of {s} failed, see {logf}\n{p.stderr[-3000:]}")
        secs = time.monotonic() - t0
        logf.write_text("".join(text))
        return secs, parse_rawjson("".join(text)), per

    IMPLS = {"ref": "build_ref", "ls-bake": "build_ls_bake", "ls-seq": "build_ls_seq"}

    def measure(self, impl, scenario, rep, nonce=None):
        nonce = nonce or self.nonce[impl]
        logf = self.out / "logs" / f"{scenario}-{rep}-{impl}.rawjson"
        logf.parent.mkdir(exist_ok=True)
        la = loadavg()
        secs, builds, per = getattr(self, self.IMPLS[impl])(nonce, logf)
        summ = summarize(builds)
        m = {"impl": impl, "scenario": scenario, "rep": rep, "seconds": round(secs, 2), "nonce": nonce,
             "per_build": per, "loadavg_before": la, "log": str(logf), **summ}
        self.results["measurements"].append(m)
        log(f"{scenario:8} rep {rep} {impl:7} {secs:7.1f}s  ({summ['n_work_steps']} steps ran, "
            f"{summ['work_step_seconds']:.1f}s of step time, export {summ['export_seconds']:.1f}s, load {la})")
        self.save()
        return m

    # -- scenario changes (in the temp copy only) --
    def change(self, scenario, rep):
        tag = f"{self.rid} rep {rep}"
        if scenario == "code":
            p = self.ctx / "apps/svc_rag_retriever/main.py"
            p.write_text(p.read_text() + f"# bench: code change {tag}\n")
        elif scenario == "svc-req":
            p = "apps/svc_rag_retriever/requirements.txt"
            (self.ctx / p).write_text(self.orig[p] + f"# bench: {tag}\n{SVC_PKGS[rep % len(SVC_PKGS)]}\n")
        elif scenario == "base-req":
            p = "libs/requirements-ml.txt"
            (self.ctx / p).write_text(self.orig[p] + f"# bench: {tag}\n{ML_PKGS[rep % len(ML_PKGS)]}\n")

    def order(self, rep, impls):
        k = rep % len(impls)
        return impls[k:] + impls[:k]

    def run_scenarios(self):
        a = self.args
        impls = ["ref", "ls-bake", "ls-seq"]
        for sc in a.scenarios:
            if sc == "cold":
                cold_impls = impls if a.cold_seq else ["ref", "ls-bake"]
                for rep in range(a.cold_runs):
                    for impl in self.order(rep, cold_impls):
                        if os.environ.get("BENCH_ALLOW_PRUNE") == "1":
                            log("BENCH_ALLOW_PRUNE=1: GLOBAL prune of every cache mount on this engine "
                                "(docker buildx prune -f --filter type=exec.cachemount)")
                            sh(["docker", "buildx", "prune", "-f", "--filter", "type=exec.cachemount"])
                            self.pruned = True
                        nonce = f"cold-{self.rid}-{impl}-{rep}"
                        self.measure(impl, "cold", rep, nonce)
                        self.nonce[impl] = nonce
                # ls-seq shares nothing with ls-bake (different nonce): bring it to a built
                # state (untimed) when its cold run was skipped.
                if "ls-seq" not in cold_impls and "ls-seq" not in self.nonce:
                    self.nonce["ls-seq"] = f"cold-{self.rid}-ls-seq-prep"
                    log("preparing ls-seq's cache chain (untimed)")
                    self.measure("ls-seq", "prep", 0)
                continue
            for impl in impls:  # a scenario list without cold: start from a fresh chain
                if impl not in self.nonce:
                    self.nonce[impl] = f"warm-{self.rid}-{impl}"
                    log(f"preparing {impl} (untimed)")
                    self.measure(impl, "prep", 0)
            runs = max(a.runs_for(sc), a.base_req_seq_runs if sc == "base-req" else 0)
            for rep in range(runs):
                self.change(sc, rep)
                for impl in self.order(rep, impls):
                    if sc == "base-req" and rep >= (a.base_req_seq_runs if impl == "ls-seq" else a.base_req_runs):
                        continue
                    self.measure(impl, sc, rep)

    # -- frontend overhead: trivial stack through # syntax= vs the same image from a Dockerfile --
    def frontend_overhead(self):
        d = self.out / "trivial"
        d.mkdir(exist_ok=True)
        (d / "stack.toml").write_text(
            f"# syntax={self.frontend}\n[services.trivial]\nfrom = \"{self.python}\"\nenv = {{ BENCH = \"1\" }}\n")
        (d / "Dockerfile").write_text(f"FROM {self.python}\nENV BENCH=1\n")
        (d / ".dockerignore").write_text("*\n")
        cmds = {
            "layerstack": ["docker", "buildx", "build", "--progress=rawjson", "-f", str(d / "stack.toml"),
                           "-t", f"layerstack-bench/trivial-ls:{self.rid}", str(d)],
            "dockerfile": ["docker", "buildx", "build", "--progress=rawjson", "-f", str(d / "Dockerfile"),
                           "-t", f"layerstack-bench/trivial-df:{self.rid}", str(d)],
        }
        self.tags += [f"layerstack-bench/trivial-ls:{self.rid}", f"layerstack-bench/trivial-df:{self.rid}"]
        times = {k: [] for k in cmds}
        for k, c in cmds.items():  # warm-up
            sh(c)
        for i in range(self.args.overhead_runs):
            for k in (list(cmds) if i % 2 == 0 else list(cmds)[::-1]):
                t0 = time.monotonic()
                p = sh(c := cmds[k])
                times[k].append(round(time.monotonic() - t0, 3))
                if i == 0:
                    (self.out / "logs").mkdir(exist_ok=True)
                    (self.out / "logs" / f"overhead-{k}.rawjson").write_text(p.stderr)
        med = {k: statistics.median(v) for k, v in times.items()}
        # Where the time goes in one layerstack build (vertex durations).
        b = parse_rawjson((self.out / "logs" / "overhead-layerstack.rawjson").read_text())
        steps = [{"name": v["name"], "s": round(vertex_seconds(v), 3), "cached": v["cached"]} for x in b for v in x["vertices"]]
        self.results["frontend_overhead"] = {"runs": times, "median": med,
                                             "overhead_seconds": round(med["layerstack"] - med["dockerfile"], 3),
                                             "layerstack_vertices": steps}
        log(f"frontend overhead: layerstack {med['layerstack']:.2f}s vs Dockerfile {med['dockerfile']:.2f}s "
            f"(median of {self.args.overhead_runs})")
        self.save()

    def llb_bench(self):
        manifest = BENCH / "llb-bench" / "Cargo.toml"
        log("llb-bench: building (release, own workspace) and running")
        sh(["cargo", "build", "--release", "--offline", "--manifest-path", str(manifest), "--target-dir", str(TARGET_DIR)])
        exe = TARGET_DIR / "release" / "llb-bench"
        out = sh([str(exe), "--services", "50", "--iters", str(self.args.llb_iters), "--json"]).stdout
        self.results["llb_gen_50"] = json.loads(out)
        log(f"llb-bench: {out.strip()}")
        self.save()

    def cleanup(self):
        if self.args.keep_images:
            return
        for t in self.tags:
            subprocess.run(["docker", "image", "rm", t], capture_output=True)

    def save(self):
        (self.out / "results.json").write_text(json.dumps(self.results, indent=1))

    # -- report --
    def report(self):
        ms = self.results["measurements"]
        lines = []
        f = self.results["facts"]
        lines.append(f"# layerstack vs hand-written Dockerfiles — run {self.rid}\n")
        lines.append(f"dockerd {f['dockerd']}, {f['buildx']}, {f['nproc']} cores, kernel {f['kernel']}, "
                     f"HEAD {f['git_head']}, load at start: {f['loadavg_start']}\n")
        if self.pruned:
            lines.append("**BENCH_ALLOW_PRUNE=1 was set: every cache mount on the engine was pruned before each cold run.**\n")
        lines.append("| scenario | reference (s) | ls-bake (s) | ls-seq (s) | layerstack best | ratio ls/ref | runs (ref/bake/seq) |")
        lines.append("|---|---|---|---|---|---|---|")
        table = {}
        for sc in SCENARIOS:
            row = {}
            for impl in ("ref", "ls-bake", "ls-seq"):
                v = [m["seconds"] for m in ms if m["scenario"] == sc and m["impl"] == impl]
                row[impl] = (statistics.median(v), len(v), v) if v else None
            if not row["ref"]:
                continue
            ls = [(row[i][0], i) for i in ("ls-bake", "ls-seq") if row[i]]
            best = min(ls) if ls else None
            table[sc] = {"ref": row["ref"], "ls-bake": row["ls-bake"], "ls-seq": row["ls-seq"],
                         "best": best, "ratio": (best[0] / row["ref"][0]) if best else None}
            fmt = lambda r: f"{r[0]:.1f}" if r else "—"
            lines.append(f"| {sc} | {fmt(row['ref'])} | {fmt(row['ls-bake'])} | {fmt(row['ls-seq'])} | "
                         + (f"{best[0]:.1f} ({best[1]}) | **{best[0] / row['ref'][0]:.2f}x** | " if best else "— | — | ")
                         + f"{'/'.join(str(row[i][1]) if row[i] else '0' for i in ('ref', 'ls-bake', 'ls-seq'))} |")
        self.results["table"] = {k: {"ref": v["ref"][0], "ls_bake": v["ls-bake"][0] if v["ls-bake"] else None,
                                     "ls_seq": v["ls-seq"][0] if v["ls-seq"] else None,
                                     "best": v["best"][1] if v["best"] else None, "ratio": v["ratio"]}
                                 for k, v in table.items()}
        lines.append("\nAll runs (s):\n")
        for sc, v in table.items():
            lines.append(f"* {sc}: " + "; ".join(f"{i} {v[i][2]}" for i in ("ref", "ls-bake", "ls-seq") if v[i]))
        # Where the time goes: medians over the runs of each implementation.
        lines.append("\n## Where the time goes (medians over runs)\n")
        lines.append("client = wall − Σ engine span per build (buildx start, session, gRPC); frontend = "
                     "from a build's first vertex to its first `load metadata` (Dockerfile parse, or "
                     "starting the layerstack frontend container + reading stack.toml/.dockerignore); "
                     "context = file transfer vertices; steps = Σ durations of the exec/file steps that "
                     "ran (overlapping under bake); export = Σ `exporting to image`.\n")
        lines.append("| scenario | impl | wall | builds | client | frontend | context | steps ran | Σ step s | export |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        med = lambda xs: statistics.median(xs) if xs else 0.0
        for sc in table:
            for impl in ("ref", "ls-bake", "ls-seq"):
                runs = [m for m in ms if m["scenario"] == sc and m["impl"] == impl]
                if not runs:
                    continue
                client = med([m["seconds"] - m["engine_span_seconds"] for m in runs])
                lines.append(f"| {sc} | {impl} | {med([m['seconds'] for m in runs]):.1f} | {runs[0]['builds']} | "
                             f"{client:.1f} | {med([m['pre_metadata_seconds'] for m in runs]):.2f} | "
                             f"{med([m['context_seconds'] for m in runs]):.2f} | {med([m['n_work_steps'] for m in runs]):.0f} | "
                             f"{med([m['work_step_seconds'] for m in runs]):.1f} | {med([m['export_seconds'] for m in runs]):.1f} |")
        # What ran: the median run of each implementation per scenario.
        lines.append("\n## Steps that ran (not cached) and exports, median run of each\n")
        for sc in table:
            for impl in ("ref", "ls-bake", "ls-seq"):
                runs = sorted([m for m in ms if m["scenario"] == sc and m["impl"] == impl], key=lambda m: m["seconds"])
                if not runs:
                    continue
                m = runs[len(runs) // 2]
                lines.append(f"### {sc} — {impl} (rep {m['rep']}): {m['seconds']:.1f}s wall, {m['n_work_steps']} steps ran "
                             f"({m['work_step_seconds']:.1f}s summed), export {m['export_seconds']:.1f}s"
                             + (f", per build: {m['per_build']}" if m["per_build"] else "") + "\n")
                for e in m["executed"]:
                    if e["kind"] not in ("work", "export"):
                        continue
                    nm = e["name"] if len(e["name"]) < 130 else e["name"][:127] + "..."
                    lines.append(f"    {e['s']:6.2f}s  [{e['build']}] {nm}")
                lines.append("")
        fo = self.results.get("frontend_overhead")
        if fo:
            lines.append(f"\n## Frontend overhead\n\nlayerstack {fo['median']['layerstack']:.2f}s vs Dockerfile "
                         f"{fo['median']['dockerfile']:.2f}s (median of {len(fo['runs']['layerstack'])}): "
                         f"{fo['overhead_seconds']:+.2f}s per build. Runs: {fo['runs']}\n")
            for s in fo["layerstack_vertices"]:
                lines.append(f"    {s['s']:6.3f}s {'CACHED ' if s['cached'] else ''}{s['name']}")
        lb = self.results.get("llb_gen_50")
        if lb:
            lines.append(f"\n## LLB generation, synthetic 50 services\n\n```\n{json.dumps(lb, indent=1)}\n```\n")
        lines.append(f"\nFrontend image size: {f['frontend_size_bytes']} bytes ({f['frontend_size_bytes'] / 1e6:.1f} MB)\n")
        lines.append(f"Load at end: {open('/proc/loadavg').read().strip()}\n")
        text = "\n".join(lines) + "\n"
        (self.out / "results.md").write_text(text)
        self.save()
        return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="repetitions of noop/code/svc-req (median)")
    ap.add_argument("--base-req-runs", type=int, default=3, help="repetitions of base-req for ref and ls-bake")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--no-cold-seq", dest="cold_seq", action="store_false",
                    help="skip ls-seq cold (its cache chain is then prepared untimed: same cost)")
    ap.add_argument("--base-req-seq-runs", type=int, default=3, help="ls-seq repetitions of base-req")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--out")
    ap.add_argument("--llb-iters", type=int, default=51)
    ap.add_argument("--overhead-runs", type=int, default=9)
    ap.add_argument("--skip-llb", action="store_true")
    ap.add_argument("--skip-frontend", action="store_true")
    ap.add_argument("--keep-images", action="store_true")
    ap.add_argument("--rebuild-tools", action="store_true", help="rebuild llb-gen even if present")
    ap.add_argument("--report-only", metavar="DIR", help="re-read the logs of an earlier run in DIR and rewrite its report")
    a = ap.parse_args()
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    a.runs_for = lambda sc: a.base_req_runs if sc == "base-req" else a.runs
    bad = set(a.scenarios) - set(SCENARIOS)
    if bad:
        ap.error(f"unknown scenarios {bad}; known: {SCENARIOS}")
    if os.environ.get("BENCH_ALLOW_PRUNE") == "1" and "cold" in a.scenarios:
        log("BENCH_ALLOW_PRUNE=1: cold runs will GLOBALLY prune cache mounts (everyone's) on this engine")
    if a.report_only:
        b = Bench(a)
        b.out = Path(a.report_only)
        b.results = json.loads((b.out / "results.json").read_text())
        b.rid = b.results["run_id"]
        for m in b.results["measurements"]:
            m.update(summarize(parse_rawjson(Path(m["log"]).read_text())))
        print(b.report())
        return
    b = Bench(a)
    t0 = time.monotonic()
    b.setup()
    try:
        if not a.skip_llb:
            b.llb_bench()
        if not a.skip_frontend:
            b.frontend_overhead()
        b.run_scenarios()
    finally:
        b.results["facts"]["total_seconds"] = round(time.monotonic() - t0, 1)
        try:
            text = b.report()
        finally:
            b.cleanup()
    print(text)
    log(f"done in {time.monotonic() - t0:.0f}s; results: {b.out}/results.md and results.json")


if __name__ == "__main__":
    main()
