"""Slide source (jupytext percent format) → `completed` and `code-along` notebooks.

Cells tagged `del` are the live-coding parts: they are kept in the completed notebook and
emptied in the code-along one. Cells tagged `notes` are speaker notes and go into neither.
"""
import copy
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


def convert(job):
    nb = jupytext.read(job.input_file, fmt="py:percent")
    out, cleared = variants(nb)
    base = os.path.splitext(job.output_file)[0]
    written = {}
    for name, v in out.items():
        nbformat.validate(v)
        path = f"{base}.{name}.ipynb"
        nbformat.write(v, path)
        written[name] = path
    kinds = [c.cell_type for c in out["completed"].cells]
    return {"cells": len(kinds), "markdown": kinds.count("markdown"), "code": kinds.count("code"),
            "code_along_cleared": cleared, "notes_dropped": len(nb.cells) - len(kinds),
            "nbformat": nbformat.__version__, "jupytext": jupytext.__version__, "outputs": written}
