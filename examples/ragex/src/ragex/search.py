"""`ragex search`: run ripgrep (`rg --json`) and turn its event stream into matches."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pathspec

IGNORE_FILE = ".ragexignore"


@dataclass
class Match:
    path: str
    line: int
    text: str


def ripgrep() -> str:
    rg = shutil.which("rg")
    if rg is None:
        raise SystemExit("ragex: ripgrep (rg) is not on PATH")
    return rg


def ignore_spec(root: Path, extra: list[str]) -> pathspec.PathSpec:
    """Patterns from ROOT/.ragexignore plus --exclude, in gitignore syntax."""
    lines = list(extra)
    f = root / IGNORE_FILE
    if f.is_file():
        lines += f.read_text().splitlines()
    return pathspec.PathSpec.from_lines("gitwildmatch", lines)


def search(
    pattern: str,
    root: Path,
    *,
    ignore_case: bool = False,
    glob: list[str] | None = None,
    exclude: list[str] | None = None,
) -> list[Match]:
    cmd = [ripgrep(), "--json", "--no-config"]
    if ignore_case:
        cmd.append("--ignore-case")
    for g in glob or []:
        cmd += ["--glob", g]
    cmd += ["--", pattern, "."]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    # rg exits 1 when nothing matched, 2 on errors (a bad regex, unreadable files).
    if proc.returncode not in (0, 1):
        raise SystemExit(f"ragex: rg failed ({proc.returncode}): {proc.stderr.strip()}")
    spec = ignore_spec(root, exclude or [])
    out: list[Match] = []
    for line in proc.stdout.splitlines():
        event = json.loads(line)
        if event.get("type") != "match":
            continue
        data = event["data"]
        path = data["path"].get("text", "")
        path = os.path.normpath(path)
        if spec.match_file(path):
            continue
        text = data["lines"].get("text", "").rstrip("\n")
        out.append(Match(path=path, line=data["line_number"], text=text))
    out.sort(key=lambda m: (m.path, m.line))
    return out
