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
# dockerd 26's buildx (0.13) has no `--call`: the `--call check` tests (integration-tests/tests/
# check.rs) drive this engine with the current Docker's buildx plugin when it is installed
# (scripts/engine-current.sh, which .ci/run's test phase sets up first).
current_plugins="${LAYERSTACK_CURRENT_ENGINE_PREFIX:-/opt/layerstack-engine-current}/root/usr/libexec/docker/cli-plugins"
if [[ -z "${LAYERSTACK_BUILDX_PLUGINS:-}" && -x "$current_plugins/docker-buildx" ]]; then
  export LAYERSTACK_BUILDX_PLUGINS="$current_plugins"
fi
# The 2×50 concurrent-bake load test fails inside dockerd 26's exporter (DeadlineExceeded
# while 50 images export at once; docs/robustness.md): it runs on the current Docker only.
if [[ "${LAYERSTACK_TEST_PRUNE:-0}" == 1 ]]; then
  source scripts/lib/prune-chunks.sh
  integration_in_chunks --test-threads=2 --skip concurrent_bakes_ "$@"
  exit
fi
cargo test -p integration-tests --locked --no-fail-fast -- --test-threads=2 \
  --skip concurrent_bakes_ "$@"
