#!/usr/bin/env bash
# The integration tests against the second engine: Debian trixie's dockerd 26.1 (BuildKit
# v0.13, buildx 0.13; scripts/engine.sh), beside the current Docker of scripts/test.sh. See
# docs/engines.md.
#
# Usage: scripts/test-26.sh [cargo test args after --, e.g. merge or --test-threads=1]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "test-26: cargo is required (rustup toolchain)" >&2; exit 1
fi
eval "$(scripts/engine.sh)"
scripts/engine.sh versions
scripts/base-images.sh
scripts/conda-base-image.sh
export LAYERSTACK_ENGINE=1
cargo test -p integration-tests --locked --no-fail-fast -- --test-threads=2 "$@"
