#!/usr/bin/env bash
# scripts/conda-base-image.sh — the local conda base image for tests: layerstack-test/micromamba:dev
#
# Usage:  eval "$(scripts/engine.sh)" && scripts/base-images.sh && scripts/conda-base-image.sh [--force]
#         (runs scripts/engine.sh and scripts/base-images.sh itself when needed)
#
# What it is: `python:3.12-slim` (the local one scripts/base-images.sh makes) plus a TEST
# STAND-IN for micromamba at /usr/local/bin/micromamba — scripts/micromamba-standin/micromamba,
# a small Python CLI on py-rattler from PyPI, installed into the venv /opt/micromamba-standin.
# The real micromamba (and so mambaorg/micromamba) cannot be had here: no conda channel or
# download host is reachable, only crates.io, PyPI, Debian and npm. Like mambaorg/micromamba
# the image has ENV MAMBA_ROOT_PREFIX=/opt/conda, PATH=/opt/conda/bin:$PATH and an empty base
# environment (/opt/conda/conda-meta); unlike it, it runs as root. What the stand-in does and
# does not do: scripts/micromamba-standin/README.md.
#
# Idempotent: the image carries a label with the hash of its recipe (this generated
# Dockerfile, the stand-in script, the pinned versions) and of the python:3.12-slim image id;
# when the tag already has that label nothing is built. --force rebuilds anyway. The pip
# download cache is a BuildKit cache mount, so a rebuild downloads nothing that pip has seen.
set -euo pipefail

IMAGE="${LAYERSTACK_MICROMAMBA_IMAGE:-layerstack-test/micromamba:dev}"
BASE="python:3.12-slim"
PY_RATTLER_VERSION=0.28.0   # wheel: cp310-abi3-manylinux_2_17_x86_64 (also aarch64); Python >= 3.10
PYYAML_VERSION=6.0.3
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STANDIN_DIR="$HERE/micromamba-standin"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

T0=$SECONDS
log() { printf '[conda-base-image +%3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { printf '[conda-base-image] ERROR: %s\n' "$*" >&2; exit 1; }

if ! docker version >/dev/null 2>&1; then
  log "no engine answering (DOCKER_HOST=${DOCKER_HOST:-unset}); running scripts/engine.sh"
  eval "$("$HERE/engine.sh")"
fi
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  log "no local $BASE; running scripts/base-images.sh"
  "$HERE/base-images.sh"
fi
[[ -f "$STANDIN_DIR/micromamba" ]] || die "missing $STANDIN_DIR/micromamba"
LOCKDIR="${LAYERSTACK_CACHE:-/var/cache/layerstack}"
mkdir -p "$LOCKDIR"
exec 9>"$LOCKDIR/conda-base-image.lock"
flock 9   # one builder at a time (test binaries may call this concurrently)

DOCKERFILE="$(cat <<EOF
FROM $BASE
# layerstack TEST STAND-IN for micromamba (py-rattler), see scripts/micromamba-standin/README.md
RUN --mount=type=cache,id=layerstack-micromamba-standin-pip,target=/root/.cache/pip \\
    python3 -m venv /opt/micromamba-standin \\
 && /opt/micromamba-standin/bin/pip install --disable-pip-version-check \\
      py-rattler==$PY_RATTLER_VERSION pyyaml==$PYYAML_VERSION
COPY micromamba /opt/micromamba-standin/micromamba.py
COPY micromamba-wrapper.sh /usr/local/bin/micromamba
RUN chmod 0755 /usr/local/bin/micromamba \\
 && mkdir -p /opt/conda/conda-meta /opt/conda/pkgs \\
 && micromamba --version
ENV MAMBA_ROOT_PREFIX=/opt/conda
ENV PATH=/opt/conda/bin:\$PATH
LABEL org.opencontainers.image.title="layerstack-test/micromamba" \\
      org.opencontainers.image.description="TEST STAND-IN for micromamba on py-rattler $PY_RATTLER_VERSION (not the real micromamba)"
EOF
)"

KEY="$( { printf '%s\n' "$DOCKERFILE"; cat "$STANDIN_DIR/micromamba" "$STANDIN_DIR/micromamba-wrapper.sh";
          docker image inspect -f '{{.Id}}' "$BASE"; } | sha256sum | cut -c1-16)"
HAVE="$(docker image inspect -f '{{index .Config.Labels "layerstack.micromamba-standin.key"}}' "$IMAGE" 2>/dev/null || true)"
if [[ "$HAVE" == "$KEY" ]] && ((!FORCE)); then
  log "up to date: $IMAGE (key $KEY)"
  exit 0
fi

log "building $IMAGE (py-rattler $PY_RATTLER_VERSION, key $KEY)"
CTX="$(mktemp -d)"
trap 'rm -rf "$CTX"' EXIT
cp "$STANDIN_DIR/micromamba" "$STANDIN_DIR/micromamba-wrapper.sh" "$CTX/"
printf '%s\nLABEL layerstack.micromamba-standin.key="%s"\n' "$DOCKERFILE" "$KEY" > "$CTX/Dockerfile"
OLD="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
docker buildx build --network=host --provenance=false --progress=plain --load \
  -t "$IMAGE" "$CTX" > "$CTX/build.log" 2>&1 \
  || { tail -n 40 "$CTX/build.log" >&2; die "docker buildx build failed"; }
NEW="$(docker image inspect -f '{{.Id}}' "$IMAGE")"
if [[ -n "$OLD" && "$OLD" != "$NEW" ]]; then docker image rm "$OLD" >/dev/null 2>&1 || true; fi
log "done: $IMAGE $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0fMB", $1/1e6}') ($(docker run --rm --pull=never --network=none "$IMAGE" micromamba --version))"
