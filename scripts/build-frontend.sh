#!/usr/bin/env bash
# Build the frontend as a static binary on the host and load it into the running engine as
# an image (default tag layerstack:dev). Needs the engine env (eval "$(scripts/engine.sh)").
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-layerstack:dev}"
triple="$(uname -m)-unknown-linux-gnu"
echo "layerstack: building the frontend binary ($triple, static)" >&2
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked -p layerstack-frontend --target "$triple" >&2
bin="target/$triple/release/layerstack-frontend"
# With CARGO_TARGET_DIR elsewhere (one per worktree), copy the binary to where the Dockerfile's
# context (and .dockerignore) expects it.
built="${CARGO_TARGET_DIR:-target}/$triple/release/layerstack-frontend"
if [[ "$(realpath -m "$built")" != "$(realpath -m "$bin")" ]]; then
  mkdir -p "$(dirname "$bin")"; cp "$built" "$bin"
fi
# A static(-pie) binary has no program interpreter: it runs in a FROM scratch image.
if readelf -l "$bin" | grep -q "Requesting program interpreter"; then
  echo "layerstack: $bin is dynamically linked; it would not run in a scratch image" >&2; exit 1
fi
echo "layerstack: packaging $bin as $tag" >&2
docker buildx build --load -f Dockerfile.frontend --target prebuilt --build-arg "BINARY=$bin" -t "$tag" . >&2
echo "$tag"
