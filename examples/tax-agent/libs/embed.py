"""Embeddings for the ML services: hashed bag-of-words vectors in numpy (base-ml only).

The real services use sentence-transformers; this keeps the same interface (text → unit vector)
with a deterministic feature-hashing model that needs no weights download.
"""
import zlib

import numpy as np

from libs.text import tokenize

DIM = 256


def embed(texts):
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for tok in tokenize(text):
            h = zlib.crc32(tok.encode())
            out[row, h % DIM] += 1.0 if (h >> 16) & 1 else -1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)
