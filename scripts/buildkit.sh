#!/usr/bin/env bash
# scripts/buildkit.sh — standalone BuildKit v0.32.2 behind buildx's remote driver, the shape of
# CI's `docker/setup-buildx-action`, with a local registry as the docker.io mirror.
#
# Usage:
#   eval "$(scripts/buildkit.sh)"     # build/start what is missing, create the builders, push
#                                     # the frontend and base images, export the env below
#   scripts/buildkit.sh status        # exit 0 iff the registry and both buildkitds answer
#   scripts/buildkit.sh push          # (re)push the frontend and base images to the registry
#   scripts/buildkit.sh stop          # stop both buildkitds and the registry (by their pidfiles)
#
# Contract: stdout carries ONLY `export VAR=value` lines (like scripts/engine.sh); progress and
# errors go to stderr. Needs the docker CLI + buildx of the shared engine on PATH
# (`eval "$(scripts/engine.sh)"`, which this script runs itself when no engine answers): the
# frontend image and the base images are taken from that engine's image store and pushed.
#
# What it sets up (idempotent; a re-run with everything up takes a few seconds):
#   * buildkitd + buildctl v0.32.2, built offline by ../shared/engines/build-buildkitd.sh (the
#     engines folder beside the checkout; a clear error when it is absent) into
#     $LAYERSTACK_BUILDKIT_PREFIX/bin. Already built binaries are reused.
#   * Debian's `docker-registry` (apt) run with its own config and storage under
#     $LAYERSTACK_BK_STATE/registry, listening on 127.0.0.1:5000 only (never the packaged
#     service, which is left alone).
#   * buildkitd "amd64" (the native node; its OCI worker also lists the platforms QEMU runs)
#     and buildkitd "arm64" (`[worker.oci] platforms = ["linux/arm64"]`, the second node), each
#     with its own root and socket, `[registry."docker.io"] mirrors` → the local registry
#     (plain HTTP), and `--allow-insecure-entitlement network.host`.
#   * buildx builders with the remote driver: $LAYERSTACK_BK_BUILDER (one node: the native
#     buildkitd) and $LAYERSTACK_BK_NODES_BUILDER (two nodes: linux/amd64 on the native
#     buildkitd, linux/arm64 appended on the arm64 one; buildx sends each platform to its
#     node). Never made the current builder: callers pass `--builder`.
#   * The frontend image (layerstack:dev, scripts/build-frontend.sh builds it if missing) and
#     the base images (scripts/base-images.sh) pushed as 127.0.0.1:5000/library/NAME:TAG, so
#     `# syntax=layerstack:dev` and `FROM python:3.12-slim` resolve through the mirror.
#
# Exports: LAYERSTACK_REGISTRY (127.0.0.1:5000), LAYERSTACK_BK_BUILDER,
# LAYERSTACK_BK_NODES_BUILDER, LAYERSTACK_BK_ADDR and LAYERSTACK_BK_ADDR_ARM64 (the buildkitd
# sockets, for `buildctl --addr … prune`), and PATH with the BuildKit bin dir in front.
#
# Environment knobs (defaults in brackets):
#   LAYERSTACK_BUILDKIT_PREFIX [/opt/buildkit-v0.32.2]     buildkitd, buildctl
#   LAYERSTACK_SHARED_ENGINES  [<checkout>/../shared/engines] build-buildkitd.sh and the tarball
#   LAYERSTACK_BK_STATE        [/var/lib/layerstack-bk]     roots, configs, logs, registry data
#   LAYERSTACK_BK_RUN          [/run/layerstack-bk]         sockets
#   LAYERSTACK_REGISTRY_PORT   [5000]
#   LAYERSTACK_FRONTEND_IMAGE  [layerstack:dev]
#   LAYERSTACK_BK_TIMEOUT      [60]                          seconds to wait for each daemon
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PREFIX="${LAYERSTACK_BUILDKIT_PREFIX:-/opt/buildkit-v0.32.2}"
SHARED="${LAYERSTACK_SHARED_ENGINES:-$REPO/../shared/engines}"
STATE="${LAYERSTACK_BK_STATE:-/var/lib/layerstack-bk}"
RUNDIR="${LAYERSTACK_BK_RUN:-/run/layerstack-bk}"
PORT="${LAYERSTACK_REGISTRY_PORT:-5000}"
REGISTRY="127.0.0.1:$PORT"
FRONTEND="${LAYERSTACK_FRONTEND_IMAGE:-layerstack:dev}"
TIMEOUT="${LAYERSTACK_BK_TIMEOUT:-60}"
BUILDER=layerstack-bk
NODES_BUILDER=layerstack-bk-nodes
BASE_IMAGES=(debian:bookworm-slim python:3.12-slim python:3.11-slim)
NATIVE="$(dpkg --print-architecture)"
case "$NATIVE" in
  amd64) FOREIGN=arm64 ;;
  arm64) FOREIGN=amd64 ;;
  *) FOREIGN="" ;;
esac
LOCK="$STATE/buildkit.lock"

log() { printf '[buildkit] %s\n' "$*" >&2; }
die() { printf '[buildkit] ERROR: %s\n' "$*" >&2; exit 1; }
pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

sock() { echo "$RUNDIR/$1/buildkitd.sock"; }

print_env() {
  printf 'export LAYERSTACK_REGISTRY=%q\n' "$REGISTRY"
  printf 'export LAYERSTACK_BK_BUILDER=%q\n' "$BUILDER"
  printf 'export LAYERSTACK_BK_NODES_BUILDER=%q\n' "$NODES_BUILDER"
  printf 'export LAYERSTACK_BK_ADDR=%q\n' "unix://$(sock "$NATIVE")"
  printf 'export LAYERSTACK_BK_ADDR_ARM64=%q\n' "unix://$(sock arm64)"
  case "$PATH" in
    "$PREFIX/bin:"*) printf 'export PATH=%q\n' "$PATH" ;;
    *) printf 'export PATH=%q\n' "$PREFIX/bin:$PATH" ;;
  esac
}

# ------------------------------------------------------------- buildkitd ---

build_buildkitd() {
  if [[ -x "$PREFIX/bin/buildkitd" && -x "$PREFIX/bin/buildctl" ]]; then return 0; fi
  [[ -x "$SHARED/build-buildkitd.sh" ]] \
    || die "no BuildKit in $PREFIX/bin and no $SHARED/build-buildkitd.sh to build it (the shared engines folder beside the checkout; set LAYERSTACK_SHARED_ENGINES or LAYERSTACK_BUILDKIT_PREFIX)"
  log "building buildkitd with $SHARED/build-buildkitd.sh (several minutes the first time)"
  "$SHARED/build-buildkitd.sh" "$PREFIX" >&2
}

bk_answering() {
  [[ -S "$(sock "$1")" ]] && "$PREFIX/bin/buildctl" --addr "unix://$(sock "$1")" debug workers >/dev/null 2>&1
}

# buildkitd.toml for node $1 (amd64/arm64): OCI worker, registry mirror, plain-HTTP registry.
write_bk_config() {
  local node="$1" platforms=""
  [[ "$node" == "$NATIVE" ]] || platforms="  platforms = [\"linux/$node\"]"
  mkdir -p "$STATE/$node"
  cat > "$STATE/$node/buildkitd.toml" <<EOF
# written by scripts/buildkit.sh
root = "$STATE/$node/root"
[grpc]
  address = ["unix://$(sock "$node")"]
[worker.oci]
  enabled = true
$platforms
[worker.containerd]
  enabled = false
[registry."docker.io"]
  mirrors = ["$REGISTRY"]
[registry."$REGISTRY"]
  http = true
  insecure = true
[registry."localhost:$PORT"]
  http = true
  insecure = true
EOF
}

start_buildkitd() {
  local node="$1" pidfile="$STATE/$1/buildkitd.pid" log="$STATE/$1/buildkitd.log" pid waited=0
  bk_answering "$node" && return 0
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if pid_alive "$pid"; then log "buildkitd $node (pid $pid) does not answer; stopping it"; stop_pid "$pid"; fi
  write_bk_config "$node"
  mkdir -p "$RUNDIR/$node"
  rm -f "$(sock "$node")"
  log "starting buildkitd $node (log: $log)"
  printf '\n===== %s: buildkitd start =====\n' "$(date -Is)" >> "$log"
  setsid "$PREFIX/bin/buildkitd" --config "$STATE/$node/buildkitd.toml" \
    --allow-insecure-entitlement network.host </dev/null >>"$log" 2>&1 9>&- &
  pid=$!
  echo "$pid" > "$pidfile"
  until bk_answering "$node"; do
    pid_alive "$pid" || { tail -n 30 "$log" | sed 's/^/[buildkitd] /' >&2; die "buildkitd $node exited (log: $log)"; }
    ((waited < TIMEOUT * 5)) || die "buildkitd $node did not answer within ${TIMEOUT}s (log: $log)"
    sleep 0.2; waited=$((waited + 1))
  done
  log "buildkitd $node answering on unix://$(sock "$node") (pid $pid): $("$PREFIX/bin/buildctl" --addr "unix://$(sock "$node")" debug workers 2>/dev/null | awk 'NR==2 { print $2 }')"
}

stop_pid() {
  local pid="$1"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do pid_alive "$pid" || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

# -------------------------------------------------------------- registry ---

registry_answering() {
  curl -fsS --max-time 5 "http://$REGISTRY/v2/" >/dev/null 2>&1
}

start_registry() {
  registry_answering && return 0
  if ! command -v docker-registry >/dev/null; then
    log "installing Debian's docker-registry"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends docker-registry >&2 \
      || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends docker-registry >&2; } \
      || die "cannot install docker-registry"
  fi
  local dir="$STATE/registry" pid waited=0
  mkdir -p "$dir/data"
  cat > "$dir/config.yml" <<EOF
# written by scripts/buildkit.sh: loopback only, own storage
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
  pid="$(cat "$dir/registry.pid" 2>/dev/null || true)"
  if pid_alive "$pid"; then stop_pid "$pid"; fi
  log "starting docker-registry on $REGISTRY (log: $dir/registry.log)"
  setsid docker-registry serve "$dir/config.yml" </dev/null >>"$dir/registry.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" > "$dir/registry.pid"
  until registry_answering; do
    pid_alive "$pid" || { tail -n 20 "$dir/registry.log" >&2; die "docker-registry exited (log: $dir/registry.log)"; }
    ((waited < TIMEOUT * 5)) || die "docker-registry did not answer within ${TIMEOUT}s"
    sleep 0.2; waited=$((waited + 1))
  done
}

# ---------------------------------------------------------------- images ---

# NAME:TAG of the docker.io library → REGISTRY/library/NAME:TAG (what the mirror serves).
mirror_name() {
  local ref="$1"
  case "$ref" in */*) echo "$REGISTRY/$ref" ;; *) echo "$REGISTRY/library/$ref" ;; esac
}

# Push an image of the shared engine's store to the registry, unless the registry already has
# the same digest under that name. The extra tag is removed from the engine's store afterwards.
push_image() {
  local ref="$1" target have want
  target="$(mirror_name "$ref")"
  want="$(docker image inspect --format '{{.Id}}' "$ref" 2>/dev/null)" || die "no image $ref in the engine's store"
  have="$(curl -fsSI --max-time 10 \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$(manifest_path "$target")" 2>/dev/null \
    | awk 'tolower($1) == "docker-content-digest:" { print $2 }' | tr -d '\r' || true)"
  if [[ -n "$have" && "$have" == "$want" ]]; then return 0; fi
  log "pushing $ref ($want) as $target"
  docker tag "$ref" "$target"
  docker push -q "$target" >&2 || { docker image rm "$target" >/dev/null 2>&1 || true; die "docker push $target failed"; }
  docker image rm "$target" >/dev/null 2>&1 || true
}

# REGISTRY/REPO:TAG → REPO/manifests/TAG
manifest_path() {
  local rest="${1#"$REGISTRY"/}"
  echo "${rest%:*}/manifests/${rest##*:}"
}

push_images() {
  local ref
  if ! docker image inspect "$FRONTEND" >/dev/null 2>&1; then
    log "no $FRONTEND in the engine's store: building it (scripts/build-frontend.sh)"
    "$REPO/scripts/build-frontend.sh" "$FRONTEND" >/dev/null
  fi
  for ref in "${BASE_IMAGES[@]}"; do
    docker image inspect "$ref" >/dev/null 2>&1 || { "$REPO/scripts/base-images.sh" >&2; break; }
  done
  for ref in "$FRONTEND" "${BASE_IMAGES[@]}"; do push_image "$ref"; done
}

# -------------------------------------------------------------- builders ---

builder_ok() {
  docker buildx inspect "$1" 2>/dev/null | grep -q '^Driver: *remote'
}

create_builders() {
  if ! builder_ok "$BUILDER"; then
    docker buildx rm "$BUILDER" >/dev/null 2>&1 || true
    log "creating builder $BUILDER (remote driver, one node)"
    docker buildx create --name "$BUILDER" --node "$BUILDER-$NATIVE" --driver remote \
      "unix://$(sock "$NATIVE")" >/dev/null
  fi
  if ! builder_ok "$NODES_BUILDER" \
     || [[ "$(docker buildx inspect "$NODES_BUILDER" 2>/dev/null | grep -c '^Name:')" -lt 3 ]]; then
    docker buildx rm "$NODES_BUILDER" >/dev/null 2>&1 || true
    log "creating builder $NODES_BUILDER (remote driver, linux/$NATIVE + linux/arm64 nodes)"
    docker buildx create --name "$NODES_BUILDER" --node "$NODES_BUILDER-$NATIVE" --driver remote \
      --platform "linux/$NATIVE" "unix://$(sock "$NATIVE")" >/dev/null
    docker buildx create --append --name "$NODES_BUILDER" --node "$NODES_BUILDER-arm64" \
      --driver remote --platform linux/arm64 "unix://$(sock arm64)" >/dev/null
  fi
  docker buildx inspect --bootstrap "$BUILDER" >/dev/null 2>&1 || die "builder $BUILDER does not start"
  docker buildx inspect --bootstrap "$NODES_BUILDER" >/dev/null 2>&1 || die "builder $NODES_BUILDER does not start"
}

# ------------------------------------------------------------------ main ---

ensure_engine_cli() {
  if ! docker version >/dev/null 2>&1; then
    eval "$("$REPO/scripts/engine.sh")"
  fi
  docker buildx version >/dev/null 2>&1 || die "docker buildx does not work"
}

lock() { mkdir -p "$STATE"; exec 9>"$LOCK"; flock 9; }

cmd="${1:-env}"
case "$cmd" in
  env|start|"")
    [[ "$NATIVE" == amd64 ]] || die "the two-node setup assumes an amd64 machine (arm64 under QEMU); this is $NATIVE"
    lock
    ensure_engine_cli
    build_buildkitd
    start_registry
    start_buildkitd "$NATIVE"
    start_buildkitd arm64
    push_images
    create_builders
    log "ready: builders $BUILDER, $NODES_BUILDER; registry $REGISTRY; $("$PREFIX/bin/buildkitd" --version 2>/dev/null)"
    print_env
    ;;
  status)
    registry_answering && bk_answering "$NATIVE" && bk_answering arm64
    ;;
  push)
    lock
    ensure_engine_cli
    start_registry
    push_images
    ;;
  stop)
    lock
    for f in "$STATE/$NATIVE/buildkitd.pid" "$STATE/arm64/buildkitd.pid" "$STATE/registry/registry.pid"; do
      pid="$(cat "$f" 2>/dev/null || true)"
      if pid_alive "$pid"; then log "stopping pid $pid ($f)"; stop_pid "$pid"; fi
      rm -f "$f"
    done
    ;;
  *)
    die "unknown command '$cmd' (use: env | status | push | stop)"
    ;;
esac
