#!/usr/bin/env bash
# bench/tax-agent-reference/build.sh — build examples/tax-agent the way seed 001 does it: the
# seed's build-base-images.sh (base-runtime, then base-ml) followed by its
# build-and-push-images.sh (each service, one after the other), with the BuildKit cache mounts
# of seed 004. Every image is tagged ${REGISTRY}/${OWNER}/NAME:${BASE_VERSION} in the local image
# store, so `FROM ${REGISTRY}/${OWNER}/base-ml:${BASE_VERSION}` resolves to the image just built
# (a local name is resolved before any pull; no registry is involved).
#
# Usage (engine env loaded: eval "$(scripts/engine.sh)"):
#   bench/tax-agent-reference/build.sh [CONTEXT] [-- extra docker buildx build args…]
#   CONTEXT defaults to examples/tax-agent. Env: REGISTRY [layerstack-bench], OWNER [ref],
#   BASE_VERSION [v1.0.1], PYTHON_VERSION [3.12], PYTHON_IMAGE
#   [python:${PYTHON_VERSION}-slim], ONLY ["" = all 7 images, or a space-separated
#   subset in build order], PROGRESS [plain].
# Prints one line per image to stderr: `ref: NAME N.NNs`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONTEXT="${1:-$HERE/../../examples/tax-agent}"
shift || true
[[ "${1:-}" == "--" ]] && shift
EXTRA=("$@")
REGISTRY="${REGISTRY:-layerstack-bench}"
OWNER="${OWNER:-ref}"
BASE_VERSION="${BASE_VERSION:-v1.0.1}"
PYTHON_VERSION="${PYTHON_VERSION:-3.12}"
PYTHON_IMAGE="${PYTHON_IMAGE:-python:$PYTHON_VERSION-slim}"
PROGRESS="${PROGRESS:-plain}"
ALL="base-runtime base-ml svc-ocr svc-rag-indexer svc-rag-retriever svc-ingestion svc-extract"
ONLY="${ONLY:-$ALL}"

for name in $ONLY; do
  t0=$(date +%s.%N)
  docker buildx build --network=host --progress="$PROGRESS" \
    -f "$HERE/$name.Dockerfile" \
    --build-arg "REGISTRY=$REGISTRY" --build-arg "OWNER=$OWNER" \
    --build-arg "BASE_VERSION=$BASE_VERSION" --build-arg "PYTHON_VERSION=$PYTHON_VERSION" --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" \
    ${EXTRA[@]+"${EXTRA[@]}"} \
    -t "$REGISTRY/$OWNER/$name:$BASE_VERSION" "$CONTEXT"
  t1=$(date +%s.%N)
  printf 'ref: %s %.2fs\n' "$name" "$(echo "$t1 - $t0" | bc)" >&2
done
