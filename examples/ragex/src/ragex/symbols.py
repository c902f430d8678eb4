"""`ragex symbols`: the functions and classes of Python files, parsed with tree-sitter.

This is the chunking step of the real ragex (code is split into symbols before it is
embedded); tree-sitter and its Python grammar come from the `ml` layer.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import tree_sitter_python
from tqdm import tqdm
from tree_sitter import Language, Parser

PYTHON = Language(tree_sitter_python.language())
KINDS = {"function_definition": "def", "class_definition": "class"}


@dataclass
class Symbol:
    path: str
    line: int
    kind: str
    name: str


def python_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def symbols_of(path: Path, display: str) -> list[Symbol]:
    tree = Parser(PYTHON).parse(path.read_bytes())
    out: list[Symbol] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        kind = KINDS.get(node.type)
        if kind:
            name = node.child_by_field_name("name")
            out.append(
                Symbol(display, node.start_point[0] + 1, kind, name.text.decode() if name else "?")
            )
        stack.extend(reversed(node.children))
    return out


def symbols(root: Path) -> list[Symbol]:
    files = python_files(root)
    out: list[Symbol] = []
    base = root if root.is_dir() else root.parent
    for f in tqdm(files, desc="parsing", unit="file", disable=not sys.stderr.isatty()):
        out += symbols_of(f, str(f.relative_to(base)))
    return out
