#!/usr/bin/env python3
"""bench/cross.py — one arm64 ML layer, installed four ways, timed in ONE run on ONE engine.

The layer (numpy, pandas, scikit-learn and their dependencies from PyPI, on the local
python:3.12-slim) is built for linux/arm64 on this amd64 machine with

  pip  emulated   `--build-arg LAYERSTACK_CROSS=false`: pip runs in the arm64 image under QEMU
  pip  cross      layerstack's default: a resolve step on the build platform writes the
                  aarch64 wheels as a pylock.toml (`--platform … --only-binary=:all: --report`),
                  installed like a `lock` step (HTTP sources, groups on amd64), merged on
  uv   emulated   the same with `installer = "uv"`
  uv   cross      uv with `--python-platform aarch64-manylinux_2_36`
  lock native     the same packages from a committed lock: `lock = "pylock.toml"` (written here
                  by `uv pip compile --format pylock.toml --python-platform aarch64-manylinux_2_17`
                  for the image's Python), every wheel a checksummed HTTP source, the groups
                  installed on the build platform and merged: no resolve, no emulation

Each measurement is a whole `docker buildx build --no-cache` (what a user waits for; no
export), and, from `--progress=rawjson`, the install vertices (emulated: the pip/uv step;
cross: resolve + group installs + merge; lock: group installs + merge): the sum of their
seconds, and the layer's span (first start to last completion: groups run in parallel). The
package download caches (BuildKit cache mounts; the lock's HTTP sources, which `--no-cache`
does not re-fetch: they are cached by checksum) are warmed first and stay warm: this measures
installing, not the network. Reported: the median of --runs runs, and the ratios.

Usage: python3 bench/cross.py [--runs 3] [--packages "numpy pandas scikit-learn"] [--out DIR]
                              [--modes pip-emulated,lock-native] [--engine engine-current.sh]
Needs uv on the host for the lock mode (`pip install uv`).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import REPO, load_engine_env, log, parse_rawjson, parse_ts, sh, vertex_seconds  # noqa: E402

STACK = """# syntax={frontend}
[stack]
name = "cross-bench"
default = "ml"
installer = "{installer}"
# uv verifies TLS with the system store (the machine's proxy CA is there).
install-env = {{ UV_NATIVE_TLS = "1", BENCH_NONCE = "{nonce}" }}

[layers.ml]
from = "python:3.12-slim"
pip = [{packages}]
"""


LOCK_STACK = """# syntax={frontend}
[stack]
name = "cross-bench"
default = "ml"

[layers.ml]
from = "python:3.12-slim"
lock = {{ file = "pylock.toml", python-version = "{python}" }}
"""


def write_lock(ctx, packages, python):
    """pylock.toml of `packages` for linux/arm64 and CPython `python`, by uv on the host."""
    (ctx / "requirements.in").write_text("\n".join(packages) + "\n")
    env = dict(os.environ, UV_NATIVE_TLS="1")
    subprocess.run(
        ["uv", "pip", "compile", "--quiet", "--format", "pylock.toml", "--python-platform",
         "aarch64-manylinux_2_17", "--python-version", python, "--only-binary", ":all:",
         "-o", str(ctx / "pylock.toml"), str(ctx / "requirements.in")],
        check=True, env=env,
    )


def span_seconds(vs):
    """First start to last completion of `vs` (parallel vertices count once)."""
    starts = [parse_ts(v["started"]) for v in vs if v["started"]]
    ends = [parse_ts(v["completed"]) for v in vs if v["completed"]]
    starts, ends = [t for t in starts if t], [t for t in ends if t]
    return (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0


def build(ctx, installer, cross, nonce, packages, frontend, python=None):
    if installer == "lock":
        (ctx / "stack.toml").write_text(LOCK_STACK.format(frontend=frontend, python=python))
    else:
        (ctx / "stack.toml").write_text(
            STACK.format(
                frontend=frontend,
                installer=installer,
                nonce=nonce,
                packages=", ".join(f'"{p}"' for p in packages),
            )
        )
    cmd = [
        "docker", "buildx", "build", "--network=host", "--platform", "linux/arm64",
        "--no-cache", "--progress=rawjson", "-f", str(ctx / "stack.toml"), str(ctx),
    ]
    if not cross:
        cmd[3:3] = ["--build-arg", "LAYERSTACK_CROSS=false"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"build failed: {' '.join(cmd)}\n{p.stderr[-4000:]}")
    vertices = [v for b in parse_rawjson(p.stderr) for v in b["vertices"]]
    install = [v for v in vertices if "[layer ml" in v["name"] and (
        "install" in v["name"] or "(merge)" in v["name"])]
    names = [v["name"] for v in install]
    if installer == "lock":
        assert any(" lock group " in n and n.endswith("(install on linux/amd64)") for n in names), names
        assert not any("emulated" in n or ": resolve for" in n for n in names), names
    elif cross:
        # pip/uv resolve into a lock installed as lock groups on linux/amd64; without a lock
        # (an index without sha256s) the cross-install script installs.
        assert any(
            "(resolved for linux/arm64, installed on linux/amd64)" in n
            or "cross-install on linux/amd64 for linux/arm64" in n
            for n in names
        ), names
        assert not any("emulated" in n for n in names), names
    else:
        assert any("emulated on linux/arm64" in n for n in names), names
    return wall, sum(vertex_seconds(v) for v in install), span_seconds(install), names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--packages", default="numpy==2.1.3 pandas==2.2.3 scikit-learn==1.5.2")
    ap.add_argument("--frontend", default="layerstack:dev")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--modes", default="pip-emulated,pip-cross,uv-emulated,uv-cross,lock-native",
                    help="which of the five to run (comma-separated)")
    ap.add_argument("--engine", default="engine.sh", help="scripts/ENGINE that serves the build")
    a = ap.parse_args()
    load_engine_env(a.engine)
    packages = a.packages.split()
    ctx = Path(tempfile.mkdtemp(prefix="layerstack-cross-bench-"))
    label = lambda i, c: f"{i} {'native' if i == 'lock' else 'cross' if c else 'emulated'}"
    wanted = a.modes.split(",")
    modes = [(i, c) for i in ("pip", "uv") for c in (False, True)] + [("lock", False)]
    modes = [(i, c) for i, c in modes if label(i, c).replace(" ", "-") in wanted]
    results = {label(i, c): {"wall": [], "install": [], "span": []} for i, c in modes}
    python = sh(["docker", "run", "--rm", "--pull=never", "--platform", "linux/arm64",
                 "python:3.12-slim", "python3", "-c",
                 "import sys; print('%d.%d' % sys.version_info[:2])"]).stdout.strip()
    try:
        if any(i == "lock" for i, _ in modes):
            write_lock(ctx, packages, python)
        log("warming the download caches (one build per installer and mode)")
        for i, c in modes:
            build(ctx, i, c, f"warm-{time.time_ns()}", packages, a.frontend, python)
        for r in range(a.runs):
            # Rotate the order from one repetition to the next.
            order = modes[r % len(modes):] + modes[: r % len(modes)]
            for i, c in order:
                wall, inst, span, names = build(
                    ctx, i, c, f"{r}-{time.time_ns()}", packages, a.frontend, python)
                results[label(i, c)]["wall"].append(wall)
                results[label(i, c)]["install"].append(inst)
                results[label(i, c)]["span"].append(span)
                log(f"run {r + 1}/{a.runs} {label(i, c)}: build {wall:.1f} s, install vertices "
                    f"{inst:.1f} s, layer span {span:.1f} s")
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    med = {k: {m: statistics.median(v[m]) for m in v} for k, v in results.items()}
    lines = [
        f"# Cross-install vs emulation: one linux/arm64 ML layer ({' '.join(packages)})",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"median of {a.runs} runs, `--no-cache` builds with warm download caches.",
        "",
        "| installer / mode | build (s) | install vertices, sum (s) | layer span (s) |",
        "|---|---:|---:|---:|",
    ]
    for k in results:
        lines.append(f"| {k} | {med[k]['wall']:.1f} | {med[k]['install']:.1f} | {med[k]['span']:.1f} |")
    lines += ["", "| ratio | build | install vertices | layer span | speed-up (build, span) |",
              "|---|---:|---:|---:|---:|"]
    for name, x, y in [
        ("pip: cross / emulated", "pip cross", "pip emulated"),
        ("uv: cross / emulated", "uv cross", "uv emulated"),
        ("lock native / pip emulated", "lock native", "pip emulated"),
        ("lock native / uv emulated", "lock native", "uv emulated"),
        ("emulated: uv / pip", "uv emulated", "pip emulated"),
        ("cross: uv / pip", "uv cross", "pip cross"),
    ]:
        if x not in med or y not in med:
            continue
        r = lambda m: med[x][m] / med[y][m] if med[y][m] else float("nan")
        inv = lambda m: med[y][m] / med[x][m] if med[x][m] else float("nan")
        lines.append(
            f"| {name} | {r('wall'):.2f}x | {r('install'):.2f}x | {r('span'):.2f}x | "
            f"{inv('wall'):.1f}x, {inv('span'):.1f}x |"
        )
    lines += ["", "Raw (s): " + "; ".join(
        f"{k}: build {', '.join(f'{w:.1f}' for w in v['wall'])}" for k, v in results.items()
    )]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cross.md").write_text(text)
    (out / "cross.json").write_text(json.dumps(
        {"packages": packages, "python": python, "runs": a.runs, "engine": a.engine,
         "results": results, "median": med}, indent=2) + "\n")
    log(f"written {out / 'cross.md'} and cross.json")


if __name__ == "__main__":
    main()
