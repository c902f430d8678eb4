#!/usr/bin/env bash
# The integration tests against the OLD engine (Debian bookworm's dockerd 20.10, BuildKit v0.8;
# scripts/engine-old.sh), side by side with the new one. See docs/old-engines.md.
#
# Usage: scripts/test-old.sh [cargo test args after --, e.g. merge or --test-threads=1]
#
# Base images: scripts/base-images.sh sees the old engine's classic image store (one platform
# per name) and makes the native architecture's images only; the root filesystem tarballs are
# shared with the new engine's runs, the import records are per engine.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "test-old: cargo is required (rustup toolchain)" >&2; exit 1
fi
eval "$(scripts/engine-old.sh)"
scripts/engine-old.sh versions
scripts/base-images.sh
scripts/conda-base-image.sh
cargo test -p integration-tests --locked --no-fail-fast -- --test-threads=2 "$@"
