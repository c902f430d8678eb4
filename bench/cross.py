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

Each measurement is a whole `docker buildx build --no-cache` (what a user waits for; no
export), and, from `--progress=rawjson`, the seconds of the install vertices (emulated: the
pip/uv step; cross: resolve + group installs + merge). The package download caches (BuildKit cache
mounts) are warmed first and stay warm: this measures installing, not the network. Reported:
the median of --runs runs, and the ratios cross/emulated (per installer) and uv/pip (per
mode).

Usage: python3 bench/cross.py [--runs 3] [--packages "numpy pandas scikit-learn"] [--out DIR]
"""

import argparse
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
from run import REPO, load_engine_env, log, parse_rawjson, sh, vertex_seconds  # noqa: E402

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


def build(ctx, installer, cross, nonce, packages, frontend):
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
    install = [v for v in vertices if "install" in v["name"] and "[layer ml" in v["name"]]
    names = [v["name"] for v in install]
    if cross:
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
    return wall, sum(vertex_seconds(v) for v in install), names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--packages", default="numpy==2.1.3 pandas==2.2.3 scikit-learn==1.5.2")
    ap.add_argument("--frontend", default="layerstack:dev")
    ap.add_argument("--out", default=str(HERE / "results"))
    a = ap.parse_args()
    load_engine_env()
    packages = a.packages.split()
    ctx = Path(tempfile.mkdtemp(prefix="layerstack-cross-bench-"))
    modes = [(i, c) for i in ("pip", "uv") for c in (False, True)]
    label = lambda i, c: f"{i} {'cross' if c else 'emulated'}"
    results = {label(i, c): {"wall": [], "install": []} for i, c in modes}
    try:
        log("warming the download caches (one build per installer and mode)")
        for i, c in modes:
            build(ctx, i, c, f"warm-{time.time_ns()}", packages, a.frontend)
        for r in range(a.runs):
            # Rotate the order from one repetition to the next.
            order = modes[r % len(modes):] + modes[: r % len(modes)]
            for i, c in order:
                wall, inst, names = build(ctx, i, c, f"{r}-{time.time_ns()}", packages, a.frontend)
                results[label(i, c)]["wall"].append(wall)
                results[label(i, c)]["install"].append(inst)
                log(f"run {r + 1}/{a.runs} {label(i, c)}: build {wall:.1f} s, install vertices {inst:.1f} s")
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    med = {k: {m: statistics.median(v[m]) for m in v} for k, v in results.items()}
    lines = [
        f"# Cross-install vs emulation: one linux/arm64 ML layer ({' '.join(packages)})",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
        f"median of {a.runs} runs, `--no-cache` builds with warm download caches.",
        "",
        "| installer / mode | build (s) | install vertices (s) |",
        "|---|---:|---:|",
    ]
    for k in results:
        lines.append(f"| {k} | {med[k]['wall']:.1f} | {med[k]['install']:.1f} |")
    lines += ["", "| ratio | build | install vertices |", "|---|---:|---:|"]
    for name, x, y in [
        ("pip: cross / emulated", "pip cross", "pip emulated"),
        ("uv: cross / emulated", "uv cross", "uv emulated"),
        ("emulated: uv / pip", "uv emulated", "pip emulated"),
        ("cross: uv / pip", "uv cross", "pip cross"),
    ]:
        lines.append(
            f"| {name} | {med[x]['wall'] / med[y]['wall']:.2f}x | "
            f"{med[x]['install'] / med[y]['install']:.2f}x |"
        )
    lines += ["", "Raw (s): " + "; ".join(
        f"{k}: build {', '.join(f'{w:.1f}' for w in v['wall'])}" for k, v in results.items()
    )]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cross.md").write_text(text)
    log(f"written {out / 'cross.md'}")


if __name__ == "__main__":
    main()
