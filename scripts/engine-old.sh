#!/usr/bin/env bash
# scripts/engine-old.sh — start (or reuse) a private OLD Docker engine for layerstack:
# Debian bookworm's own docker.io (dockerd 20.10.24, embedded BuildKit v0.8), to run the
# integration suite against an engine without MergeOp/DiffOp, multi-platform export,
# outline/targets subrequests, the Warn RPC or secret env (see docs/old-engines.md).
#
# Usage:
#   eval "$(scripts/engine-old.sh)"      # install if needed, start if needed, export env
#   scripts/engine-old.sh env            # same as above (explicit)
#   scripts/engine-old.sh status         # exit 0 iff our old engine answers (nothing on stdout)
#   scripts/engine-old.sh versions       # dockerd, containerd, CLI, buildx, BuildKit (on stderr)
#   scripts/engine-old.sh stop           # stop our dockerd 20.10 (and the containerd it spawned)
#
# Contract (the same as scripts/engine.sh): on stdout this script prints ONLY
# `export VAR=value` lines (DOCKER_HOST, DOCKER_CONFIG, PATH, LAYERSTACK_ENGINE=old), so
# callers can eval it. Everything else goes to stderr. A re-run with the engine up takes
# well under a second.
#
# It runs side by side with scripts/engine.sh's engine (dockerd 26): nothing is shared but
# the download cache. What it sets up (all idempotent):
#   * bookworm's docker.io (dockerd 20.10.24 + docker CLI 20.10.24), containerd 1.6.20,
#     runc 1.1.5 and tini (docker-init), fetched with `apt-get download` from the host's own
#     (bookworm) apt sources and unpacked with `dpkg -x` into $LAYERSTACK_OLD_ENGINE_PREFIX.
#     Nothing is installed into the system: the system's docker packages/services (if any)
#     are never replaced, configured or started.
#   * docker-buildx 0.13.1 (bookworm has no buildx package): copied from the new engine's
#     prefix, or unpacked from its cached trixie .deb, or downloaded from trixie with a
#     private apt configuration. buildx 0.13.1 works against dockerd 20.10 (docker driver).
#   * a bridge of its own (default `lsold0`, 172.29.0.1/24): dockerd's embedded BuildKit
#     runs sandboxed RUN steps and `# syntax=` frontends on dockerd's default "bridge"
#     network, and the default docker0 belongs to the other engine. No iptables rule, no
#     sysctl: like the new engine, the bridge reaches nothing beyond this machine; builds
#     that need the network use --network=host.
#   * dockerd 20.10 with its own socket, data root (overlay2 graphdriver: the legacy image
#     store, no containerd snapshotter in 20.10), exec root, pidfile and trust key, and its
#     own containerd 1.6 (spawned by dockerd; socket $STATE/run/containerd/containerd.sock).
#
# Environment knobs (defaults in brackets):
#   LAYERSTACK_OLD_ENGINE_PREFIX  [/opt/layerstack-engine-old]      unpacked .debs
#   LAYERSTACK_OLD_ENGINE_STATE   [/var/lib/layerstack-engine-old]  data root, config, log, socket
#   LAYERSTACK_OLD_ENGINE_BRIDGE  [lsold0]                          bridge interface
#   LAYERSTACK_OLD_ENGINE_CIDR    [172.29.0.1/24]                   its address (gateway/subnet)
#   LAYERSTACK_ENGINE_PREFIX      [/opt/layerstack-engine]          where to find buildx first
#   LAYERSTACK_CACHE              [/var/cache/layerstack]           downloaded .debs (shared)
#   LAYERSTACK_ENGINE_TIMEOUT     [90]                              seconds to wait for dockerd
#   LAYERSTACK_TRIXIE_MIRROR      [http://deb.debian.org/debian]    only if buildx must be fetched
set -euo pipefail

PREFIX="${LAYERSTACK_OLD_ENGINE_PREFIX:-/opt/layerstack-engine-old}"
STATE="${LAYERSTACK_OLD_ENGINE_STATE:-/var/lib/layerstack-engine-old}"
BRIDGE="${LAYERSTACK_OLD_ENGINE_BRIDGE:-lsold0}"
CIDR="${LAYERSTACK_OLD_ENGINE_CIDR:-172.29.0.1/24}"
NEW_PREFIX="${LAYERSTACK_ENGINE_PREFIX:-/opt/layerstack-engine}"
CACHE="${LAYERSTACK_CACHE:-/var/cache/layerstack}"
TIMEOUT="${LAYERSTACK_ENGINE_TIMEOUT:-90}"
MIRROR="${LAYERSTACK_TRIXIE_MIRROR:-http://deb.debian.org/debian}"

ROOT="$PREFIX/root"                 # dpkg -x target
ENGINE_PATH="$ROOT/usr/bin:$ROOT/usr/sbin"
DATA_ROOT="$STATE/data"             # images (overlay2), containers, build cache
EXEC_ROOT="$STATE/run"              # runtime state (containerd socket, netns); wiped on a cold start
SOCK="$STATE/docker.sock"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"
DAEMON_JSON="$STATE/daemon.json"
DOCKER_CONFIG_DIR="$STATE/docker-config"
LOCK="$STATE/engine.lock"
BUILDX="$ROOT/usr/libexec/docker/cli-plugins/docker-buildx"

# Bookworm .debs unpacked into the prefix. Keep in sync with the check in `installed`.
BOOKWORM_PKGS=(docker.io containerd runc tini)
# Host packages: the shared libraries bookworm's dockerd links against (normally present),
# iproute2 for the bridge, debootstrap for scripts/base-images.sh. No docker package.
HOST_PKGS=(ca-certificates xz-utils iproute2 util-linux debootstrap
           libdevmapper1.02.1 libsystemd0 libcap2 libgcrypt20 liblzma5 libzstd1 liblz4-1
           libselinux1 libudev1)

LOG_TAG=engine-old
# log, die, dk, answering, pid_alive, print_env, lock_engine, install_host_packages, trixie_apt,
# deb_versions, cleanup_stale, start_dockerd, check_buildx, stop_dockerd (shared with
# scripts/engine.sh).
# shellcheck source-path=SCRIPTDIR source=lib/engine-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/engine-common.sh"

# engine.sh's exports, and LAYERSTACK_ENGINE=old: tells the integration tests (and people)
# which engine this is; the harness also detects it from the server version (< 23).
print_old_env() {
  print_env
  printf 'export LAYERSTACK_ENGINE=old\n'
}

# ---------------------------------------------------------------- install ---

installed() {
  [[ -x "$ROOT/usr/sbin/dockerd" && -x "$ROOT/usr/bin/docker" && -x "$ROOT/usr/bin/containerd" \
     && -x "$ROOT/usr/bin/containerd-shim-runc-v2" && -x "$ROOT/usr/sbin/runc" \
     && -x "$ROOT/usr/bin/tini-static" && -x "$BUILDX" && -f "$PREFIX/VERSIONS" ]]
}

# docker-buildx 0.13.1 into $1 (a dpkg -x root): from the new engine's prefix, else from a
# cached trixie .deb, else downloaded from trixie with a private apt configuration.
fetch_buildx() {
  local tmp="$1" dest="$1/usr/libexec/docker/cli-plugins/docker-buildx" src deb
  src="$NEW_PREFIX/root/usr/libexec/docker/cli-plugins/docker-buildx"
  install -d "$(dirname "$dest")"
  if [[ -x "$src" ]]; then
    log "buildx: copying $src"
    cp "$src" "$dest"
    echo "docker-buildx $(awk '$1 == "docker-buildx" { print $2 }' "$NEW_PREFIX/VERSIONS" 2>/dev/null) (from $NEW_PREFIX)"
    return 0
  fi
  local found=()
  shopt -s nullglob; found=("$CACHE"/debs/docker-buildx_*.deb); shopt -u nullglob
  deb="${found[0]:-}"
  if [[ -z "$deb" ]]; then
    local apt_dir="$CACHE/apt-trixie-old"
    mkdir -p "$CACHE/debs-buildx"
    log "buildx: downloading docker-buildx from trixie (private apt config in $apt_dir)"
    trixie_apt "$apt_dir" update -qq >&2
    (cd "$CACHE/debs-buildx" && rm -f ./*.deb && trixie_apt "$apt_dir" download docker-buildx >&2)
    shopt -s nullglob; found=("$CACHE"/debs-buildx/docker-buildx_*.deb); shopt -u nullglob
    deb="${found[0]:-}"
    [[ -n "$deb" ]] || die "docker-buildx could not be downloaded from trixie"
  fi
  log "buildx: unpacking $deb"
  local x="$tmp/.buildx"; mkdir -p "$x"; dpkg -x "$deb" "$x"
  cp "$x/usr/libexec/docker/cli-plugins/docker-buildx" "$dest"; rm -rf "$x"
  # shellcheck disable=SC2016
  dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb"
}

install_engine() {
  installed && return 0
  local debs="$CACHE/debs-bookworm"
  mkdir -p "$debs"
  log "downloading ${BOOKWORM_PKGS[*]} from bookworm (apt-get download; nothing is installed)"
  # The host's own apt sources are bookworm's. Stale lists (404) → refresh them once.
  if ! (cd "$debs" && rm -f ./*.deb && apt-get download "${BOOKWORM_PKGS[@]}" >&2 2>/dev/null); then
    log "apt-get download failed; refreshing the host's package lists"
    apt-get update -qq >&2
    (cd "$debs" && rm -f ./*.deb && apt-get download "${BOOKWORM_PKGS[@]}" >&2)
  fi
  local tmp="$PREFIX/root.new.$$" d
  rm -rf "$tmp"; mkdir -p "$tmp"
  for d in "$debs"/*.deb; do dpkg -x "$d" "$tmp"; done
  # Service files are not used (no init integration).
  rm -rf "$tmp/etc/init.d" "$tmp/etc/init" "$tmp/etc/default" "$tmp/lib/systemd"
  local buildx_version
  buildx_version="$(fetch_buildx "$tmp")"
  rm -rf "$ROOT"; mv "$tmp" "$ROOT"
  { deb_versions "$debs"; echo "$buildx_version"; } > "$PREFIX/VERSIONS"
  log "installed into $ROOT:"; sed 's/^/[engine-old]   /' "$PREFIX/VERSIONS" >&2
}

write_config() {
  # Besides the shared keys (scripts/lib/engine-common.sh):
  #  - deprecated-key-path: 20.10 keeps a libtrust key (the engine ID); by default in
  #    /etc/docker/key.json, here under our state dir.
  #  - bridge: our own (see above); docker0 is the other engine's.
  #  - storage-driver overlay2: the legacy graphdriver image store.
  #  - features.buildkit: plain `docker build` uses BuildKit too.
  write_engine_config "$BUILDX" \
"\"deprecated-key-path\": \"$STATE/key.json\"
\"bridge\": \"$BRIDGE\"
\"storage-driver\": \"overlay2\"
\"features\": { \"buildkit\": true }"
}

# ------------------------------------------------------------ start/stop ---

start_engine() {
  ensure_bridge
  start_dockerd "dockerd 20.10"
}

stop_engine() {
  stop_dockerd
  remove_bridge
}

# ------------------------------------------------------------------- main ---

cmd="${1:-env}"
case "$cmd" in
  env|start|"")
    if answering; then print_old_env; exit 0; fi
    lock_engine
    if ! answering; then
      install_host_packages
      install_engine
      write_config
      start_engine
    fi
    check_buildx
    print_old_env
    ;;
  status)
    answering
    ;;
  versions)
    answering || die "the old engine does not answer on $SOCK (start it: eval \"\$($0)\")"
    print_versions
    ;;
  stop)
    lock_engine
    stop_engine
    ;;
  *)
    die "unknown command '$cmd' (use: env | status | versions | stop)"
    ;;
esac
