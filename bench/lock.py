#!/usr/bin/env python3
"""bench/lock.py — one package added to a locked ML base: three ways, ONE run, ONE engine.

A tax-agent-shaped pair of images — `base-ml` (python:3.12-slim + FastAPI/uvicorn/pydantic +
numpy/pandas/scipy/scikit-learn, locked) and a small service on it — is built and pushed to the
local registry (127.0.0.1:5000) three ways:

  seeds      the seeds' way: Dockerfiles; base-ml `RUN --mount=type=cache,target=/root/.cache/pip
             pip install -r requirements.txt` (the lock exported as pins), the service FROM it
  uv         uv in Dockerfiles: uv (from PyPI) in the image, `uv sync --locked
             --no-install-project` of pyproject.toml + uv.lock with a uv cache mount
  layerstack one stack.toml: base-ml `lock = "uv.lock"` (every wheel an llb.HTTP source with its
             sha256, a layer per package group, merged), the service `from = "base-ml"`

Scenarios, each way in turn (order rotated per run):
  cold       the build cache pruned (`docker builder prune -af`), build both images, push them
  add        one package added to base-ml's dependencies (re-locked with `uv lock`), rebuild
             both images, push them (the download caches stay warm: this measures rebuilding
             and pushing, not the network)

Reported per way and scenario: wall seconds (build + push), and the bytes the registry stored
for the push (growth of its blob store: a blob already there is not uploaded again). Ratios:
layerstack / seeds, layerstack / uv. Results: --out DIR/lock.md and lock.json.

Usage: python3 bench/lock.py [--runs 1] [--out DIR]
Needs: the current Docker (scripts/engine-current.sh), scripts/buildkit.sh's registry on
127.0.0.1:5000 (its storage dir is read), uv on the host (`pip install uv`) to lock.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, load_engine_env, log, sh  # noqa: E402

REGISTRY = "127.0.0.1:5000"
REGISTRY_DATA = Path(os.environ.get("LAYERSTACK_BK_STATE", "/var/lib/layerstack-bk")) / "registry"
FRONTEND = os.environ.get("LAYERSTACK_FRONTEND_IMAGE", "layerstack:bench")

# base-ml's dependencies (tax-agent's base-runtime + base-ml, without torch: download.pytorch.org
# is out of reach here) and the packages each "add" run appends (a new one per run: never a
# cache hit).
DEPS = [
    "fastapi==0.115.6", "uvicorn==0.34.0", "pydantic==2.10.4", "httpx==0.28.1",
    "numpy==2.1.3", "pandas==2.2.3", "scipy==1.14.1", "scikit-learn==1.5.2",
]
ADDS = ["tabulate==0.9.0", "humanize==4.11.0", "toolz==1.0.0", "cachetools==5.5.0", "wcwidth==0.2.13"]

SEEDS_BASE = """FROM python:3.12-slim
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip pip install -r /tmp/requirements.txt
"""
SEEDS_SVC = """ARG BASE
FROM ${BASE}
WORKDIR /app
COPY app /app
CMD ["python3", "-m", "svc"]
"""
UV_BASE = """FROM python:3.12-slim
RUN --mount=type=cache,target=/root/.cache/pip pip install uv=={uv}
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_NATIVE_TLS=1 UV_PYTHON_DOWNLOADS=never PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml uv.lock /src/
RUN --mount=type=cache,target=/root/.cache/uv uv sync --locked --no-install-project
"""
STACK = """# syntax={frontend}
[stack]
name = "lockbench"

[layers.base-ml]
from = "python:3.12-slim"
lock = {{ file = "uv.lock", python-version = "3.11" }}

[services.svc]
from = "base-ml"
workdir = "/app"
copy = [{{ src = "app", dest = "/app" }}]
cmd = ["python3", "-m", "svc"]
"""


def registry_bytes():
    total = 0
    for root, _, files in os.walk(REGISTRY_DATA):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def write_project(d: Path, deps):
    (d / "app" / "svc").mkdir(parents=True, exist_ok=True)
    (d / "app" / "svc" / "__main__.py").write_text("import numpy, pandas, sklearn, fastapi\nprint('svc up')\n")
    (d / "pyproject.toml").write_text(
        "[project]\nname = \"lockbench\"\nversion = \"0.1.0\"\nrequires-python = \"==3.11.*\"\n"
        f"dependencies = {json.dumps(deps)}\n\n[tool.uv]\npackage = false\n"
        "environments = [\"sys_platform == 'linux' and platform_machine == 'x86_64'\"]\n"
    )
    env = dict(os.environ, UV_NATIVE_TLS="1")
    sh(["uv", "lock", "--python", "3.11", "--directory", str(d)], env=env)
    req = sh(["uv", "export", "--frozen", "--no-hashes", "--no-header", "--no-emit-project", "--directory", str(d)], env=env).stdout
    (d / "requirements.txt").write_text(req)
    (d / "Dockerfile.base").write_text(SEEDS_BASE)
    (d / "Dockerfile.svc").write_text(SEEDS_SVC)
    uv = sh(["uv", "--version"]).stdout.split()[1]
    (d / "Dockerfile.uv").write_text(UV_BASE.replace("{uv}", uv))
    (d / "stack.toml").write_text(STACK.format(frontend=FRONTEND))


def build(args, cwd):
    sh(["docker", "buildx", "build", "--network=host", "--progress=plain", *args], cwd=cwd)


def write_report(path: Path, lines):
    """The report's lines into PATH (markdown), printed too."""
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    print(text)
    log(f"results in {path.parent}")


def push(ref):
    sh(["docker", "push", "-q", ref])


def one_way(way, d: Path, tag):
    """Build base-ml and the service, push both; returns seconds."""
    repo = f"{REGISTRY}/bench-lock/{way}"
    base, svc = f"{repo}-base-ml:{tag}", f"{repo}-svc:{tag}"
    t0 = time.monotonic()
    if way == "seeds":
        build(["-f", "Dockerfile.base", "--load", "-t", base, "."], d)
        build(["-f", "Dockerfile.svc", "--build-arg", f"BASE={base}", "--load", "-t", svc, "."], d)
    elif way == "uv":
        build(["-f", "Dockerfile.uv", "--load", "-t", base, "."], d)
        build(["-f", "Dockerfile.svc", "--build-arg", f"BASE={base}", "--load", "-t", svc, "."], d)
    else:
        build(["-f", "stack.toml", "--target", "base-ml", "--load", "-t", base, "."], d)
        build(["-f", "stack.toml", "--target", "svc", "--load", "-t", svc, "."], d)
    push(base)
    push(svc)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", default=f"/tmp/layerstack-lock-bench-{time.strftime('%Y%m%d-%H%M%S')}")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    load_engine_env("engine-current.sh")
    if shutil.which("uv") is None:
        raise SystemExit("lock-bench: uv is needed on the host to lock (pip install uv)")
    if not REGISTRY_DATA.is_dir():
        raise SystemExit(f"lock-bench: no registry storage at {REGISTRY_DATA} (eval \"$(scripts/buildkit.sh)\")")
    sh([str(REPO / "scripts" / "build-frontend.sh"), FRONTEND])
    # The base image is in the registry before anything is measured: its layers count for no way.
    sh(["docker", "tag", "python:3.12-slim", f"{REGISTRY}/bench-lock/python:3.12-slim"])
    push(f"{REGISTRY}/bench-lock/python:3.12-slim")
    ways = ["seeds", "uv", "layerstack"]
    rows = []
    work = Path(tempfile.mkdtemp(prefix="lock-bench-"))
    for run in range(a.runs):
        order = ways[run % 3:] + ways[: run % 3]
        for way in order:
            d = work / f"{way}-{run}"
            d.mkdir()
            write_project(d, DEPS)
            sh(["docker", "builder", "prune", "-af"])
            before = registry_bytes()
            secs = one_way(way, d, f"r{run}-cold")
            rows.append({"run": run, "way": way, "scenario": "cold", "seconds": round(secs, 1),
                         "registry_bytes": registry_bytes() - before, "load": os.getloadavg()[0]})
            log(f"{way} cold: {secs:.1f}s, {rows[-1]['registry_bytes'] / 1e6:.1f} MB new in the registry")
            write_project(d, DEPS + [ADDS[run % len(ADDS)]])
            before = registry_bytes()
            secs = one_way(way, d, f"r{run}-add")
            rows.append({"run": run, "way": way, "scenario": "add", "seconds": round(secs, 1),
                         "registry_bytes": registry_bytes() - before, "load": os.getloadavg()[0]})
            log(f"{way} add {ADDS[run % len(ADDS)]}: {secs:.1f}s, {rows[-1]['registry_bytes'] / 1e6:.1f} MB new in the registry")
    (out / "lock.json").write_text(json.dumps(rows, indent=1))
    med = {}
    for r in rows:
        med.setdefault((r["way"], r["scenario"]), []).append(r)
    lines = ["| scenario | way | seconds (median) | new registry MB (median) |", "|---|---|---:|---:|"]
    summary = {}
    for sc in ["cold", "add"]:
        for w in ways:
            rs = med[(w, sc)]
            s = statistics.median(r["seconds"] for r in rs)
            b = statistics.median(r["registry_bytes"] for r in rs)
            summary[(w, sc)] = (s, b)
            lines.append(f"| {sc} | {w} | {s:.1f} | {b / 1e6:.1f} |")
    lines += ["", "| ratio | seconds | registry bytes |", "|---|---:|---:|"]
    for sc in ["cold", "add"]:
        for ref in ["seeds", "uv"]:
            (ls, lb), (rs, rb) = summary[("layerstack", sc)], summary[(ref, sc)]
            lines.append(f"| {sc}: layerstack / {ref} | {ls / rs:.2f}x | {lb / rb:.3f}x |")
    write_report(out / "lock.md", lines)


if __name__ == "__main__":
    main()
