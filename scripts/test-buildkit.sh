#!/usr/bin/env bash
# scripts/test-buildkit.sh — the chosen part of the integration suite on standalone BuildKit
# v0.32.2 through buildx's remote driver (the shape of CI's setup-buildx-action), set up by
# scripts/buildkit.sh: the frontend comes from a registry (127.0.0.1:5000, buildkitd's docker.io
# mirror), results are loaded or pushed, caches exported and imported. `.ci/run` calls this when
# it exists; it needs ../shared/engines (buildkitd's source) unless BuildKit is already built
# into /opt/buildkit-v0.32.2, and says so clearly when neither is there.
#
# Runs, with LAYERSTACK_BUILDER=<the one-node builder>:
#   tests/quickstart.rs    the quick start and the multi-service example, built and run
#   tests/errors.rs        stack.toml excerpts in errors (except the missing-base-image test: a
#                          name the mirror lacks makes buildkitd fall back to registry-1.docker.io,
#                          and test traffic stays on loopback)
#   tests/subrequests.rs   --print/--call targets and outline
#   tests/buildkit.rs      registry and local cache round trips (two platforms, pruned builder),
#                          multi-platform push (index + attestation manifests), two-node builder
# Extra arguments go to every test binary (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "test-buildkit: cargo is required" >&2; exit 1; }
eval "$(scripts/engine.sh)"
scripts/base-images.sh
export LAYERSTACK_FRONTEND_IMAGE="${LAYERSTACK_FRONTEND_IMAGE:-layerstack:dev}"
scripts/build-frontend.sh "$LAYERSTACK_FRONTEND_IMAGE" >/dev/null
eval "$(scripts/buildkit.sh)"   # pushes the frontend image and the base images
echo "test-buildkit: $(buildkitd --version), $(docker buildx version), docker $(docker version -f '{{.Client.Version}}')" >&2
export LAYERSTACK_ENGINE=1 LAYERSTACK_FRONTEND_PREBUILT=1 LAYERSTACK_REQUIRE_BUILDKIT=1
export LAYERSTACK_BUILDER="$LAYERSTACK_BK_BUILDER"
cargo test -p integration-tests --locked --no-fail-fast \
  --test quickstart --test errors --test subrequests --test buildkit \
  -- --test-threads=2 --skip a_missing_base_image_names_the_stack_and_the_image "$@"
