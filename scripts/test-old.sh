#!/usr/bin/env bash
# The integration tests against the OLD engine (Debian bookworm's dockerd 20.10, BuildKit v0.8;
# scripts/engine-old.sh), side by side with the new one. See docs/old-engines.md.
#
# Usage: scripts/test-old.sh [cargo test args after --, e.g. merge or --test-threads=1]
#
# Base images: the old engine's legacy image store holds one platform per name, so
# scripts/base-images.sh makes the native architecture's images only (LAYERSTACK_BASE_ARCHES);
# the root filesystem tarballs are shared with the new engine's run.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "test-old: cargo is required (rustup toolchain)" >&2; exit 1
fi
eval "$(scripts/engine-old.sh)"
LAYERSTACK_BASE_ARCHES="$(dpkg --print-architecture)" scripts/base-images.sh
scripts/conda-base-image.sh
cargo test -p integration-tests --locked --no-fail-fast -- --test-threads=2 "$@"
