#!/usr/bin/env bash
# The main job, from a fresh machine: start the current Docker (scripts/engine-current.sh:
# Debian unstable's dockerd 28, buildx 0.29) if it is not running, build the
# frontend image (layerstack:dev), build the quick-start stack through `# syntax=` and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/engine-current.sh)"
scripts/engine-current.sh versions
scripts/base-images.sh
scripts/build-frontend.sh layerstack:dev >/dev/null
echo "layerstack: building the quick-start stack (stack.toml, target api)" >&2
docker buildx build --network=host --load -f stack.toml --target api -t layerstack-quickstart-api . >&2
echo "layerstack: running layerstack-quickstart-api" >&2
docker run --rm layerstack-quickstart-api python3 -m app --once
