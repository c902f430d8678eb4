#!/usr/bin/env python3
"""bench/services.py — registry bytes of five services and their bases, seeds' way vs layerstack.

A tax-agent-shaped set of images, every package a wheel from PyPI (no torch: out of reach here):

  base-runtime  python:3.12-slim + FastAPI, uvicorn, pydantic, httpx
  base-ml       base-runtime + numpy, pandas, scipy, scikit-learn
  api           base-runtime + its code
  gateway       base-runtime + pandas (for its reports) + its code
  extractor     base-runtime + scikit-learn (numpy, scipy with it) + its code
  worker        base-ml + its code
  trainer       base-ml + its code

built and pushed to the local registry (127.0.0.1:5000) two ways, each from an empty build
cache, into a registry that already has python:3.12-slim and nothing else of either way:

  seeds       the seeds' way: one Dockerfile per image, `RUN --mount=type=cache,... pip install
              -r requirements.txt` (each image's lock exported as pins; pip skips what the base
              has), services FROM their base
  layerstack  one stack.toml: each image's `lock = "<image>/uv.lock"` (every wheel a checksummed
              HTTP source, a layer per package group), `from` the same bases

Reported per way: the bytes the registry stored for all seven images (growth of its blob store:
a blob it has is not uploaded again, so a layer shared by several images counts once), the sum
of the images' own layers (what the registry would hold without sharing), and seconds. The
seeds' way shares a layer only when images share a base: gateway's and extractor's numpy,
pandas and scipy are new layers. layerstack's identical package groups are the same layer
whatever the image, so they are stored once.

Usage: python3 bench/services.py [--out DIR]
Needs: the current Docker (scripts/engine-current.sh), scripts/buildkit.sh's registry on
127.0.0.1:5000, uv on the host (`pip install uv`) to lock.
"""

import argparse
import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path

import sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lock import REGISTRY, REGISTRY_DATA, FRONTEND, registry_bytes, push, write_report  # noqa: E402
from run import REPO, load_engine_env, log, sh  # noqa: E402

RUNTIME = ["fastapi==0.115.6", "uvicorn==0.34.0", "pydantic==2.10.4", "httpx==0.28.1"]
ML = ["numpy==2.1.3", "pandas==2.2.3", "scipy==1.14.1", "scikit-learn==1.5.2"]
# image -> (base image, its dependencies: the whole closure it needs)
IMAGES = {
    "base-runtime": ("python:3.12-slim", RUNTIME),
    "base-ml": ("base-runtime", RUNTIME + ML),
    "api": ("base-runtime", None),
    "gateway": ("base-runtime", RUNTIME + ["pandas==2.2.3"]),
    "extractor": ("base-runtime", RUNTIME + ["scikit-learn==1.5.2"]),
    "worker": ("base-ml", None),
    "trainer": ("base-ml", None),
}
PYTHON = f"{REGISTRY}/bench-services/python:3.12-slim"
SERVICES = ["api", "gateway", "extractor", "worker", "trainer"]


def lock_project(d: Path, deps):
    d.mkdir(parents=True, exist_ok=True)
    (d / "pyproject.toml").write_text(
        f"[project]\nname = \"{d.name}\"\nversion = \"0.1.0\"\nrequires-python = \"==3.11.*\"\n"
        f"dependencies = {json.dumps(deps)}\n\n[tool.uv]\npackage = false\n"
        "environments = [\"sys_platform == 'linux' and platform_machine == 'x86_64'\"]\n"
    )
    env = dict(os.environ, UV_NATIVE_TLS="1")
    sh(["uv", "lock", "--python", "3.11", "--directory", str(d)], env=env)
    req = sh(["uv", "export", "--frozen", "--no-hashes", "--no-header", "--no-emit-project",
              "--directory", str(d)], env=env).stdout
    (d / "requirements.txt").write_text(req)


def write_project(d: Path):
    stack = [f"# syntax={FRONTEND}", "[stack]", 'name = "services-bench"', ""]
    for name, (base, deps) in IMAGES.items():
        kind = "services" if name in SERVICES else "layers"
        if deps:
            lock_project(d / name, deps)
        if name in SERVICES:
            (d / "code" / name).mkdir(parents=True, exist_ok=True)
            (d / "code" / name / "main.py").write_text(f"print('{name} up')\n")
        # The seeds' Dockerfile of this image.
        lines = ["ARG BASE", "FROM ${BASE}"]
        if deps:
            lines += [f"COPY {name}/requirements.txt /tmp/requirements.txt",
                      "RUN --mount=type=cache,target=/root/.cache/pip pip install -r /tmp/requirements.txt"]
        if name in SERVICES:
            lines += [f"COPY code/{name} /app", 'CMD ["python3", "/app/main.py"]']
        (d / f"Dockerfile.{name}").write_text("\n".join(lines) + "\n")
        stack += [f"[{kind}.{name}]", f'from = "{base}"']
        if deps:
            stack.append(f'lock = {{ file = "{name}/uv.lock", python-version = "3.11" }}')
        if name in SERVICES:
            stack += [f'copy = [{{ src = "code/{name}", dest = "/app" }}]', 'cmd = ["python3", "/app/main.py"]']
        stack.append("")
    (d / "stack.toml").write_text("\n".join(stack))


def build(args, cwd):
    sh(["docker", "buildx", "build", "--network=host", "--progress=plain", *args], cwd=cwd)


ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def manifest(ref):
    """The registry's manifest of `REGISTRY/name:tag` (or `@digest`), by its HTTP API."""
    path = ref[len(REGISTRY) + 1:]
    name, _, tag = path.partition("@") if "@" in path else path.rpartition(":")
    req = urllib.request.Request(f"http://{REGISTRY}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT})
    with urllib.request.urlopen(req, timeout=30) as r:
        return name, json.load(r)


def layers(ref):
    """(digest, size) of the linux/amd64 image's layers."""
    name, m = manifest(ref)
    if "manifests" in m:
        dig = next(x["digest"] for x in m["manifests"] if x.get("platform", {}).get("architecture") == "amd64")
        _, m = manifest(f"{REGISTRY}/{name}@{dig}")
    return [(x["digest"], x["size"]) for x in m["layers"]]


def own_layer_bytes(ref, base_ref):
    """Compressed bytes of the layers `ref` has beyond its base's."""
    base = {dg for dg, _ in layers(base_ref)} if base_ref else set()
    return sum(sz for dg, sz in layers(ref) if dg not in base)


def one_way(way, d: Path, tag):
    repo = f"{REGISTRY}/bench-services/{way}"
    refs = {}
    t0 = time.monotonic()
    for name, (base, _) in IMAGES.items():
        ref = f"{repo}-{name}:{tag}"
        if way == "seeds":
            base_ref = refs.get(base, "python:3.12-slim")
            build(["-f", f"Dockerfile.{name}", "--build-arg", f"BASE={base_ref}", "--load", "-t", ref, "."], d)
        else:
            build(["-f", "stack.toml", "--target", name, "--load", "-t", ref, "."], d)
        refs[name] = ref
    for ref in refs.values():
        push(ref)
    return time.monotonic() - t0, refs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=f"/tmp/layerstack-services-bench-{time.strftime('%Y%m%d-%H%M%S')}")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    load_engine_env("engine-current.sh")
    if not REGISTRY_DATA.is_dir():
        raise SystemExit(f"services-bench: no registry storage at {REGISTRY_DATA} (eval \"$(scripts/buildkit.sh)\")")
    sh([str(REPO / "scripts" / "build-frontend.sh"), FRONTEND])
    sh(["docker", "tag", "python:3.12-slim", PYTHON])
    push(PYTHON)
    work = Path(tempfile.mkdtemp(prefix="services-bench-"))
    tag = time.strftime("%H%M%S")
    rows = []
    for way in ["seeds", "layerstack"]:
        d = work / way
        d.mkdir()
        write_project(d)
        sh(["docker", "builder", "prune", "-af"])
        before = registry_bytes()
        secs, refs = one_way(way, d, tag)
        stored = registry_bytes() - before
        own = {}
        for name, (base, _) in IMAGES.items():
            own[name] = own_layer_bytes(refs[name], refs.get(base, PYTHON))
        rows.append({"way": way, "seconds": round(secs, 1), "registry_bytes": stored,
                     "own_layer_bytes": own, "load": os.getloadavg()[0]})
        log(f"{way}: {secs:.1f}s, {stored / 1e6:.1f} MB new in the registry; own layers "
            + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in own.items()))
    (out / "services.json").write_text(json.dumps(rows, indent=1))
    s, l = rows
    lines = [
        "| way | seconds (build + push, cold) | MB stored in the registry | MB of the images' own layers (no sharing) |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['way']} | {r['seconds']:.1f} | {r['registry_bytes'] / 1e6:.1f} | "
                     f"{sum(r['own_layer_bytes'].values()) / 1e6:.1f} |")
    lines += ["", "| image | seeds: own layers MB | layerstack: own layers MB |", "|---|---:|---:|"]
    for name in IMAGES:
        lines.append(f"| {name} | {s['own_layer_bytes'][name] / 1e6:.1f} | {l['own_layer_bytes'][name] / 1e6:.1f} |")
    lines += ["", f"layerstack / seeds, registry bytes: {l['registry_bytes'] / s['registry_bytes']:.2f}x; "
              f"seconds: {l['seconds'] / s['seconds']:.2f}x"]
    write_report(out / "services.md", lines)


if __name__ == "__main__":
    main()
