"""Text helpers shared by the indexer and the retriever."""
import os
import re

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
WORD = re.compile(r"[a-z0-9£]+")


def tokenize(text):
    return WORD.findall(text.lower())


def chunks(text, size=60, overlap=15):
    """Split into overlapping windows of `size` words (the real indexer counts tiktoken tokens)."""
    words = text.split()
    step = size - overlap
    return [" ".join(words[i:i + size]) for i in range(0, max(len(words) - overlap, 1), step)]


def corpus():
    """{name: text} of the guidance notes in libs/corpus."""
    docs = {}
    for name in sorted(os.listdir(CORPUS)):
        with open(os.path.join(CORPUS, name), encoding="utf-8") as f:
            docs[name] = f.read()
    return docs
