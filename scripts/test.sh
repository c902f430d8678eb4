#!/usr/bin/env bash
# All tests: unit, snapshot and integration tests (the latter against a real engine, which this
# starts; under CI=true a missing engine is a failure, never a skip). `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "test: cargo is required (rustup toolchain)" >&2; exit 1
fi
eval "$(scripts/engine.sh)"
scripts/base-images.sh
scripts/conda-base-image.sh
export LAYERSTACK_ENGINE=1
cargo test --workspace --locked --no-fail-fast -- --test-threads=2 "$@"
