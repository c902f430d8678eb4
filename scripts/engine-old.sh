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

log() { printf '[engine-old] %s\n' "$*" >&2; }
die() { printf '[engine-old] ERROR: %s\n' "$*" >&2; exit 1; }

# All docker calls in this script go to our socket with our config and binaries.
dk() {
  DOCKER_HOST="unix://$SOCK" DOCKER_CONFIG="$DOCKER_CONFIG_DIR" PATH="$ENGINE_PATH:$PATH" \
    "$ROOT/usr/bin/docker" "$@"
}

answering() {
  [[ -S "$SOCK" && -x "$ROOT/usr/bin/docker" ]] && dk version >/dev/null 2>&1
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

print_env() {
  printf 'export DOCKER_HOST=%q\n' "unix://$SOCK"
  printf 'export DOCKER_CONFIG=%q\n' "$DOCKER_CONFIG_DIR"
  # Our bin dirs first (bookworm's docker CLI 20.10), unless they are already in front.
  case "$PATH" in
    "$ENGINE_PATH:"*) printf 'export PATH=%q\n' "$PATH" ;;
    *) printf 'export PATH=%q\n' "$ENGINE_PATH:$PATH" ;;
  esac
  # Tells the integration tests (and people) which engine this is; the harness also
  # detects it from the server version (< 23).
  printf 'export LAYERSTACK_ENGINE=old\n'
}

# ---------------------------------------------------------------- install ---

install_host_packages() {
  local missing=() p
  for p in "${HOST_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || apt-get update >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

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
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$CACHE/debs-buildx"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' "$MIRROR" \
      > "$apt_dir/sources.list"
    local apt_opts=(
      -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir"
      -o "Dir::Cache::archives=$apt_dir/archives" -o "Dir::Cache::pkgcache="
      -o "Dir::Cache::srcpkgcache=" -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1"
    )
    log "buildx: downloading docker-buildx from trixie (private apt config in $apt_dir)"
    apt-get "${apt_opts[@]}" update -qq >&2
    (cd "$CACHE/debs-buildx" && rm -f ./*.deb && apt-get "${apt_opts[@]}" download docker-buildx >&2)
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
  # shellcheck disable=SC2016  # ${Package} is dpkg-deb's syntax, not the shell's
  { (cd "$debs" && for d in *.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$d"; done)
    echo "$buildx_version"; } > "$PREFIX/VERSIONS"
  log "installed into $ROOT:"; sed 's/^/[engine-old]   /' "$PREFIX/VERSIONS" >&2
}

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($CIDR)"
    ip link add name "$BRIDGE" type bridge
  fi
  if ! ip -4 addr show dev "$BRIDGE" | grep -q "inet $CIDR"; then
    ip addr add "$CIDR" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

write_config() {
  mkdir -p "$STATE" "$DATA_ROOT" "$DOCKER_CONFIG_DIR/cli-plugins"
  chmod 700 "$STATE"
  # dockerd 20.10 refuses unknown keys and settings given both here and as flags.
  #  - bridge: our own (see above); docker0 is the other engine's.
  #  - deprecated-key-path: 20.10 keeps a libtrust key (the engine ID); by default in
  #    /etc/docker/key.json, here under our state dir.
  #  - storage-driver overlay2: the legacy graphdriver image store.
  #  - features.buildkit: plain `docker build` uses BuildKit too.
  cat > "$DAEMON_JSON.tmp" <<EOF
{
  "hosts": ["unix://$SOCK"],
  "data-root": "$DATA_ROOT",
  "exec-root": "$EXEC_ROOT",
  "pidfile": "$PIDFILE",
  "deprecated-key-path": "$STATE/key.json",
  "group": "root",
  "bridge": "$BRIDGE",
  "iptables": false,
  "ip-forward": false,
  "ip-masq": false,
  "storage-driver": "overlay2",
  "features": { "buildkit": true },
  "log-level": "info"
}
EOF
  mv "$DAEMON_JSON.tmp" "$DAEMON_JSON"
  ln -sfn "$BUILDX" "$DOCKER_CONFIG_DIR/cli-plugins/docker-buildx"
  [[ -f "$DOCKER_CONFIG_DIR/config.json" ]] || echo '{}' > "$DOCKER_CONFIG_DIR/config.json"
}

# ------------------------------------------------------------ start/stop ---

# Kill leftovers of a previous run: our dockerd by its pidfile and the containerd it
# spawned by its pidfile under our exec root. Only these two pids are ever signalled.
cleanup_stale() {
  local pid f
  for f in "$PIDFILE" "$EXEC_ROOT/containerd/containerd.pid"; do
    pid="$(cat "$f" 2>/dev/null || true)"
    if pid_alive "$pid"; then
      log "stopping stale process $pid (from $f)"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.2; done
      if pid_alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
  done
  if [[ -d "$EXEC_ROOT" ]]; then
    awk -v r="$EXEC_ROOT/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$EXEC_ROOT"
  fi
  rm -f "$SOCK" "$PIDFILE"
}

start_engine() {
  cleanup_stale
  ensure_bridge
  log "starting dockerd 20.10 (log: $LOG)"
  : >> "$LOG"
  printf '\n===== %s: dockerd start =====\n' "$(date -Is)" >> "$LOG"
  # Detached (own session, no inherited stdout/stderr, lock fd 9 closed). PATH puts our
  # prefix first: dockerd finds containerd, containerd-shim-runc-v2, runc, docker-proxy and
  # docker-init there.
  PATH="$ENGINE_PATH:$PATH" setsid "$ROOT/usr/sbin/dockerd" --config-file "$DAEMON_JSON" \
    </dev/null >>"$LOG" 2>&1 9>&- &
  local pid=$! waited=0
  until answering; do
    if ! pid_alive "$pid"; then
      tail -n 40 "$LOG" | sed 's/^/[dockerd] /' >&2
      die "dockerd exited during startup (full log: $LOG)"
    fi
    if ((waited >= TIMEOUT * 5)); then
      tail -n 40 "$LOG" | sed 's/^/[dockerd] /' >&2
      die "dockerd did not answer on $SOCK within ${TIMEOUT}s (full log: $LOG)"
    fi
    sleep 0.2; waited=$((waited + 1))
  done
  log "dockerd $(dk version -f '{{.Server.Version}}' 2>/dev/null) answering on unix://$SOCK (pid $pid, $((waited / 5))s)"
}

check_buildx() {
  dk buildx version >/dev/null 2>&1 || die "docker buildx does not work (plugin: $DOCKER_CONFIG_DIR/cli-plugins)"
  dk buildx use default >/dev/null 2>&1 || true
  local driver
  driver="$(dk buildx inspect 2>/dev/null | awk '/^Driver:/ { print $2; exit }')"
  [[ "$driver" == docker ]] || die "current buildx builder uses driver '$driver', expected 'docker'"
}

stop_engine() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if pid_alive "$pid"; then
    log "stopping dockerd (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 150); do pid_alive "$pid" || break; sleep 0.2; done
    pid_alive "$pid" && { log "dockerd did not stop in 30s; killing"; kill -9 "$pid" 2>/dev/null || true; }
  else
    log "dockerd not running"
  fi
  cleanup_stale
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "removing bridge $BRIDGE"
    ip link del "$BRIDGE" 2>/dev/null || true
  fi
}

# ------------------------------------------------------------------- main ---

cmd="${1:-env}"
case "$cmd" in
  env|start|"")
    if answering; then print_env; exit 0; fi
    mkdir -p "$STATE"
    exec 9>"$LOCK"
    flock 9
    if ! answering; then
      install_host_packages
      install_engine
      write_config
      start_engine
    fi
    check_buildx
    print_env
    ;;
  status)
    answering
    ;;
  stop)
    mkdir -p "$STATE"
    exec 9>"$LOCK"
    flock 9
    stop_engine
    ;;
  *)
    die "unknown command '$cmd' (use: env | status | stop)"
    ;;
esac
