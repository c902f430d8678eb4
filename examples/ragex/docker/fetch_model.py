"""Download an embedding model's files into the image (the seed's model download after pip).

    python3 fetch_model.py BASE_URL DEST FILE...

fetches BASE_URL/FILE for every FILE into DEST/FILE (the Hugging Face hub's
`{endpoint}/{repo}/resolve/{revision}/{file}` layout), writes DEST/MANIFEST (one
`sha256  size  file` line each) and fails on the first download that fails: an image is never
built with part of a model. Stdlib only, so it runs before the app's own dependencies.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import urllib.request


def fetch(url: str, dest: str, attempts: int = 3) -> tuple[str, int]:
    """Download `url` to `dest` (via a temp file); (sha256, size)."""
    for attempt in range(1, attempts + 1):
        try:
            h, size, tmp = hashlib.sha256(), 0, dest + ".part"
            with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as out:
                while chunk := r.read(1 << 20):
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            os.replace(tmp, dest)
            return h.hexdigest(), size
        except OSError as e:
            if attempt == attempts:
                sys.exit(f"fetch_model: {url}: {e}")
            time.sleep(attempt)
    raise AssertionError("unreachable")


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        sys.exit(__doc__)
    base, dest, files = argv[0].rstrip("/"), argv[1], argv[2:]
    os.makedirs(dest, exist_ok=True)
    lines = []
    for f in files:
        path = os.path.join(dest, f)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        digest, size = fetch(f"{base}/{f}", path)
        os.chmod(path, 0o644)
        lines.append(f"{digest}  {size}  {f}\n")
        print(f"fetch_model: {f} {size} bytes sha256:{digest}")
    with open(os.path.join(dest, "MANIFEST"), "w") as m:
        m.writelines(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
