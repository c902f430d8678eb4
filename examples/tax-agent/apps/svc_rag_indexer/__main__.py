"""`python -m apps.svc_rag_indexer --once`: index the shared corpus plus an HTML sample, print stats."""
import json
import os
import sys

import bs4
import uvicorn

from libs import selftest
from libs.text import corpus
from apps.svc_rag_indexer.main import app

if "--once" in sys.argv:
    docs = corpus()
    samples = os.path.join(os.path.dirname(__file__), "samples")
    for name in os.listdir(samples):
        with open(os.path.join(samples, name), encoding="utf-8") as f:
            docs[name] = f.read()
    ((_, _, body),) = selftest.call(app, [("POST", "/v1/index", json.dumps(docs).encode(), {"Content-Type": "application/json"})])
    with open(os.path.join(json.loads(body)["index_dir"], "chunks.json")) as f:
        html_chunk = next(c["text"] for c in json.load(f) if c["doc"].endswith(".html"))
    print(json.dumps({"service": "svc-rag-indexer", "beautifulsoup4": bs4.__version__, **json.loads(body),
                      "html_chunk": html_chunk[:60]}))
else:
    uvicorn.run(app, host="0.0.0.0", port=8000)
