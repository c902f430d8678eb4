"""Slide source (jupytext percent format) → `completed` and `code-along` notebooks.

Cells tagged `del` are the live-coding parts: they are kept in the completed notebook and
emptied in the code-along one. Cells tagged `notes` are speaker notes and go into neither.
Both notebooks get the kernelspec of the image's conda environment (the `python3` kernel that
ipykernel installs there), so they open and run with the course's Python.
"""
import copy
import json
import os

import jupytext
import nbformat


def variants(nb):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if "notes" not in c.metadata.get("tags", [])]
    along = copy.deepcopy(nb)
    cleared = 0
    for cell in along.cells:
        if cell.cell_type == "code" and "del" in cell.metadata.get("tags", []):
            cell.source = ""
            cleared += 1
    return {"completed": nb, "code-along": along}, cleared


def environment_kernel():
    """The `python3` kernel of the conda environment (`$CONDA_PREFIX`, else the root prefix
    `$MAMBA_ROOT_PREFIX`): ipykernel's `share/jupyter/kernels/python3/kernel.json`, or None."""
    prefix = os.environ.get("CONDA_PREFIX") or os.environ.get("MAMBA_ROOT_PREFIX")
    if not prefix:
        return None
    path = os.path.join(prefix, "share", "jupyter", "kernels", "python3", "kernel.json")
    try:
        with open(path) as f:
            spec = json.load(f)
    except FileNotFoundError:
        return None
    return {"name": "python3", "display_name": spec["display_name"],
            "language": spec.get("language", "python"), "argv": spec["argv"]}


def convert(job):
    nb = jupytext.read(job.input_file, fmt="py:percent")
    out, cleared = variants(nb)
    kernel = environment_kernel()
    base = os.path.splitext(job.output_file)[0]
    written = {}
    for name, v in out.items():
        if kernel:
            v.metadata["kernelspec"] = {k: kernel[k] for k in ("name", "display_name", "language")}
        nbformat.validate(v)
        path = f"{base}.{name}.ipynb"
        nbformat.write(v, path)
        written[name] = path
    kinds = [c.cell_type for c in out["completed"].cells]
    return {"cells": len(kinds), "markdown": kinds.count("markdown"), "code": kinds.count("code"),
            "code_along_cleared": cleared, "notes_dropped": len(nb.cells) - len(kinds),
            "nbformat": nbformat.__version__, "jupytext": jupytext.__version__,
            "kernel": kernel and {"display_name": kernel["display_name"], "python": kernel["argv"][0]},
            "outputs": written}
