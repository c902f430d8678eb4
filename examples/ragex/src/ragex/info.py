"""`ragex info`: what this image is: Python, platform, ripgrep, and torch if it is installed.

torch is imported here only, lazily: `search` and `symbols` never pay for it.
"""

from __future__ import annotations

import getpass
import importlib
import os
import platform
import shutil
import subprocess
import sys

from . import __version__


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return None


def _model(path: str | None) -> dict | None:
    """The embedding model baked into the image: its directory and MANIFEST lines."""
    if not path:
        return None
    try:
        with open(os.path.join(path, "MANIFEST")) as m:
            files = {f: {"sha256": d, "size": int(s)} for d, s, f in (l.split() for l in m)}
    except OSError:
        return {"dir": path, "files": None}
    return {"dir": path, "files": files}


def info() -> dict:
    rg_path = shutil.which("rg")
    ripgrep = None
    if rg_path is not None:
        rg = subprocess.run([rg_path, "--version"], capture_output=True, text=True)
        ripgrep = rg.stdout.splitlines()[0] if rg.returncode == 0 else None
    torch_version = _version("torch")
    cuda = None
    if torch_version is not None:
        import torch

        cuda_mod = getattr(torch, "cuda", None)
        cuda = bool(cuda_mod.is_available()) if cuda_mod is not None else False
    return {
        "ragex": __version__,
        "python": platform.python_version(),
        "executable": sys.executable,
        "machine": platform.machine(),
        "user": getpass.getuser(),
        "cwd": os.getcwd(),
        "ripgrep": ripgrep,
        "torch": torch_version,
        "torchvision": _version("torchvision"),
        "cuda_available": cuda,
        "device": os.environ.get("RAGEX_DEVICE"),
        "model": _model(os.environ.get("RAGEX_MODEL_DIR")),
    }
