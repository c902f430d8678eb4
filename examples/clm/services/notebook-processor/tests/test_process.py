"""Developer tests (`python -m pytest services/notebook-processor/tests`). .dockerignore keeps
them out of the image even though the service directory is copied as a whole."""
import os

import jupytext

from notebook_processor.process import variants

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "notebook_processor", "samples", "slides_010_functions.py")


def test_code_along_clears_del_cells():
    out, cleared = variants(jupytext.read(SAMPLE, fmt="py:percent"))
    assert cleared == 2
    assert all(c.source == "" for c in out["code-along"].cells if "del" in c.metadata.get("tags", []))
