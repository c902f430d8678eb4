"""svc-rag-indexer: HTML and Markdown documents → text chunks → embedding matrix on disk."""
import json
import os

import numpy as np
from bs4 import BeautifulSoup
from fastapi import Request

from libs.app import create_app, json_response
from libs.embed import DIM, embed
from libs.text import chunks

app = create_app("svc-rag-indexer")
INDEX_DIR = os.environ.get("INDEX_DIR", "/tmp/index")


def html_text(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["head", "script", "style", "nav"]):
        tag.decompose()
    return " ".join(soup.get_text(" ").split())


def build_index(docs: dict) -> dict:
    """docs: {name: html or markdown} → writes chunks.json and vectors.npy to INDEX_DIR."""
    rows = []
    for name, raw in sorted(docs.items()):
        text = html_text(raw) if name.endswith(".html") else " ".join(raw.split())
        rows += [{"doc": name, "chunk": i, "text": c} for i, c in enumerate(chunks(text))]
    vectors = embed([r["text"] for r in rows])
    os.makedirs(INDEX_DIR, exist_ok=True)
    np.save(os.path.join(INDEX_DIR, "vectors.npy"), vectors)
    with open(os.path.join(INDEX_DIR, "chunks.json"), "w") as f:
        json.dump(rows, f)
    return {"documents": len(docs), "chunks": len(rows), "dim": DIM, "index_dir": INDEX_DIR}


@app.post("/v1/index")
async def index_endpoint(request: Request):
    return json_response(build_index(await request.json()))
