"""svc-rag-retriever: hybrid search (BM25 + dense vectors) with typo-tolerant queries."""
import numpy as np
from rank_bm25 import BM25Okapi
from rapidfuzz import process

from libs.app import create_app, json_response
from libs.embed import embed
from libs.text import chunks, corpus, tokenize

app = create_app("svc-rag-retriever")

ROWS = [(name, c) for name, text in corpus().items() for c in chunks(" ".join(text.split()))]
TOKENS = [tokenize(c) for _, c in ROWS]
BM25 = BM25Okapi(TOKENS)
VECTORS = embed([c for _, c in ROWS])
VOCAB = sorted({t for toks in TOKENS for t in toks})


def correct(query: str) -> str:
    """Replace each unknown word with its closest vocabulary word (rapidfuzz, like fuzzywuzzy)."""
    out = []
    for word in tokenize(query):
        match = process.extractOne(word, VOCAB, score_cutoff=75) if word not in VOCAB else None
        out.append(match[0] if match else word)
    return " ".join(out)


def search(query: str, k: int = 3) -> dict:
    q = correct(query)
    bm25 = BM25.get_scores(tokenize(q))
    dense = VECTORS @ embed([q])[0]
    score = bm25 / (bm25.max() or 1) + dense
    top = np.argsort(-score)[:k]
    return {"query": query, "corrected": q,
            "hits": [{"doc": ROWS[i][0], "score": round(float(score[i]), 3), "text": ROWS[i][1][:80]} for i in top]}


@app.get("/v1/search")
def search_endpoint(q: str, k: int = 3):
    return json_response(search(q, k))
