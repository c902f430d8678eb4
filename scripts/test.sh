#!/usr/bin/env bash
# All tests: unit, snapshot and integration tests, the latter against the current Docker
# (scripts/engine-current.sh: Debian unstable's dockerd 28 / containerd 2 / buildx 0.29), which
# this starts. Under CI=true a missing engine is a failure, never a skip. `.ci/run` calls this;
# scripts/test-26.sh runs the integration suite on dockerd 26 (see docs/engines.md).
#
# Usage: scripts/test.sh [cargo test args after --, e.g. a test name filter]
# Needs nothing outside the repository (no ../shared): a fresh clone passes it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "test: cargo is required (rustup toolchain)" >&2; exit 1
fi
eval "$(scripts/engine-current.sh)"
scripts/engine-current.sh versions
scripts/base-images.sh
scripts/conda-base-image.sh
export LAYERSTACK_ENGINE=1
if [[ "${LAYERSTACK_TEST_PRUNE:-0}" == 1 ]]; then
  # The build cache pruned between chunks of integration tests (scripts/lib/prune-chunks.sh).
  source scripts/lib/prune-chunks.sh
  rc=0
  cargo test --workspace --exclude integration-tests --locked --no-fail-fast -- --test-threads=2 "$@" || rc=1
  integration_in_chunks --test-threads=2 "$@" || rc=1
  exit "$rc"
fi
cargo test --workspace --locked --no-fail-fast -- --test-threads=2 "$@"
