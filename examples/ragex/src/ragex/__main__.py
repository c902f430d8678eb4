"""The ragex command line: `python -m ragex {search,symbols,info}`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ragex", description="Code search with ripgrep and tree-sitter")
    p.add_argument("--version", action="version", version=f"ragex {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="regex search with ripgrep")
    s.add_argument("pattern")
    s.add_argument("path", nargs="?", default=".")
    s.add_argument("-i", "--ignore-case", action="store_true")
    s.add_argument("-g", "--glob", action="append", default=[], help="rg --glob (repeatable)")
    s.add_argument("--exclude", action="append", default=[], help="gitignore-style pattern")
    s.add_argument("--json", action="store_true", help="one JSON object for all matches")

    y = sub.add_parser("symbols", help="functions and classes of Python files")
    y.add_argument("path", nargs="?", default=".")
    y.add_argument("--json", action="store_true")

    sub.add_parser("info", help="versions: Python, ripgrep, torch")

    args = p.parse_args(argv)
    if args.command == "search":
        from .search import search

        matches = search(
            args.pattern,
            Path(args.path),
            ignore_case=args.ignore_case,
            glob=args.glob,
            exclude=args.exclude,
        )
        if args.json:
            print(json.dumps({"pattern": args.pattern, "matches": [m.__dict__ for m in matches]}))
        else:
            for m in matches:
                print(f"{m.path}:{m.line}: {m.text}")
            files = len({m.path for m in matches})
            print(f"{len(matches)} matches in {files} files", file=sys.stderr)
        return 0 if matches else 1
    if args.command == "symbols":
        from .symbols import symbols

        found = symbols(Path(args.path))
        if args.json:
            print(json.dumps([s.__dict__ for s in found]))
        else:
            for s in found:
                print(f"{s.path}:{s.line}: {s.kind} {s.name}")
        return 0
    from .info import info

    print(json.dumps(info()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
