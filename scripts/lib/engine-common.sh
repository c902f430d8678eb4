# shellcheck shell=bash
# scripts/lib/engine-common.sh — what scripts/engine.sh (dockerd 26, and through
# scripts/engine-current.sh Debian unstable's current Docker) and scripts/engine-old.sh (dockerd
# 20.10) share: talking to the private dockerd, host packages, the private Debian apt
# configuration, the engine's own bridge, starting, stopping and cleaning up after dockerd, the
# buildx check, the version report, the lock.
# Sourced, never run. Functions only: sourcing it starts, stops and installs nothing.
#
# The sourcing script sets first (all paths absolute):
#   LOG_TAG            the prefix of messages on stderr (`engine`, `engine-old`)
#   ROOT               the dpkg -x root of the engine's .debs (usr/bin/docker, usr/sbin/dockerd)
#   ENGINE_PATH        "$ROOT/usr/bin:$ROOT/usr/sbin", put in front of PATH for the engine
#   STATE              state directory: socket, pidfile, log, daemon.json, docker config, lock
#   SOCK PIDFILE LOG DAEMON_JSON DOCKER_CONFIG_DIR LOCK   files under $STATE
#   DATA_ROOT          dockerd's data root (images, containers, build cache)
#   EXEC_ROOT          dockerd's exec root (runtime state, wiped by cleanup_stale)
#   TIMEOUT            seconds to wait for dockerd to answer
#   HOST_PKGS          array: host packages install_host_packages makes sure of
#   MIRROR             the Debian mirror for debian_apt / trixie_apt
#   BRIDGE CIDR        only for ensure_bridge / remove_bridge: the engine's own bridge
#
# Contract kept by every function here: nothing is printed on stdout except by print_env,
# because callers `eval "$(scripts/engine.sh)"`.

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2; exit 1; }

# All docker calls of the scripts go to our socket with our config and binaries.
dk() {
  DOCKER_HOST="unix://$SOCK" DOCKER_CONFIG="$DOCKER_CONFIG_DIR" PATH="$ENGINE_PATH:$PATH" \
    "$ROOT/usr/bin/docker" "$@"
}

answering() {
  [[ -S "$SOCK" && -x "$ROOT/usr/bin/docker" ]] && dk version >/dev/null 2>&1
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# The `export` lines callers eval: DOCKER_HOST, DOCKER_CONFIG, and PATH with our bin dirs in
# front (unless they are already in front, so evaluating it again changes nothing).
print_env() {
  printf 'export DOCKER_HOST=%q\n' "unix://$SOCK"
  printf 'export DOCKER_CONFIG=%q\n' "$DOCKER_CONFIG_DIR"
  case "$PATH" in
    "$ENGINE_PATH:"*) printf 'export PATH=%q\n' "$PATH" ;;
    *) printf 'export PATH=%q\n' "$ENGINE_PATH:$PATH" ;;
  esac
}

# Take the engine's lock (fd 9) for the rest of the script: one starter or stopper at a time.
# start_dockerd closes fd 9 for dockerd, which would otherwise hold the lock forever.
lock_engine() {
  mkdir -p "$STATE"
  exec 9>"$LOCK"
  flock 9
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
  # A fresh machine has no package lists; an old machine may have stale ones.
  apt-get update -qq >&2 || apt-get update >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# `apt-get ARGS…` against one Debian suite (trixie, sid, …) with a private configuration in
# APT_DIR (its own sources.list, lists and cache): nothing of the host's apt state is read or
# changed. The host's debian-archive-keyring (bookworm's) carries the archive signing keys
# that sign trixie and unstable too.
#   debian_apt sid APT_DIR update -qq
#   debian_apt sid APT_DIR download docker-buildx     (in the directory the .deb should land in)
debian_apt() {
  local suite="$1" apt_dir="$2"; shift 2
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$MIRROR" "$suite" \
    > "$apt_dir/sources.list"
  apt-get \
    -o "Dir::Etc::SourceList=$apt_dir/sources.list" \
    -o "Dir::Etc::SourceParts=/dev/null" \
    -o "Dir::State::Lists=$apt_dir/lists" \
    -o "Dir::Cache=$apt_dir" \
    -o "Dir::Cache::archives=$apt_dir/archives" \
    -o "Dir::Cache::pkgcache=" \
    -o "Dir::Cache::srcpkgcache=" \
    -o "APT::Sandbox::User=root" \
    -o "Debug::NoLocking=1" \
    "$@"
}

# debian_apt for trixie (scripts/engine-old.sh fetches buildx from there).
trixie_apt() { debian_apt trixie "$@"; }

# `PACKAGE VERSION` of every .deb in a directory (for $PREFIX/VERSIONS).
deb_versions() {
  local d
  # shellcheck disable=SC2016  # ${Package} is dpkg-deb's syntax, not the shell's
  (cd "$1" && for d in *.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$d"; done)
}

# $STATE, the data root and our docker config: daemon.json with the keys both engines set
# (socket, data root, exec root, pidfile, group root, no iptables rules, no IP forwarding or
# masquerading, log level) and the engine's own (`"key": value` lines, given as $2: dockerd
# refuses unknown keys, and settings given both here and as flags), written atomically; and
# buildx ($1) as a CLI plugin of our docker config, which works with any docker CLI that
# honours DOCKER_CONFIG.
write_engine_config() {
  local buildx="$1" own="$2"
  mkdir -p "$STATE" "$DATA_ROOT" "$DOCKER_CONFIG_DIR/cli-plugins"
  chmod 700 "$STATE"
  {
    printf '{\n  "hosts": ["unix://%s"],\n  "data-root": "%s",\n  "exec-root": "%s",\n' \
      "$SOCK" "$DATA_ROOT" "$EXEC_ROOT"
    printf '  "pidfile": "%s",\n  "group": "root",\n' "$PIDFILE"
    printf '  "iptables": false,\n  "ip-forward": false,\n  "ip-masq": false,\n'
    printf '%s\n' "$own" | sed 's/^/  /; s/$/,/'
    printf '  "log-level": "info"\n}\n'
  } > "$DAEMON_JSON.tmp"
  mv "$DAEMON_JSON.tmp" "$DAEMON_JSON"
  ln -sfn "$buildx" "$DOCKER_CONFIG_DIR/cli-plugins/docker-buildx"
  [[ -f "$DOCKER_CONFIG_DIR/config.json" ]] || echo '{}' > "$DOCKER_CONFIG_DIR/config.json"
}

# ------------------------------------------------------------ start/stop ---

# A bridge of the engine's own ($BRIDGE with address $CIDR, both set by the sourcing script):
# dockerd's embedded BuildKit runs sandboxed RUN steps and `# syntax=` frontends on dockerd's
# default "bridge" network, and docker0 belongs to the dockerd 26 engine. No iptables rule and
# no sysctl: the bridge reaches nothing beyond this machine.
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

remove_bridge() {
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "removing bridge $BRIDGE"
    ip link del "$BRIDGE" 2>/dev/null || true
  fi
}


# Kill leftovers of a previous run (dockerd died, machine restarted, ...): our dockerd by its
# pidfile and the containerd it spawned by its pidfile under our exec root. Only these two
# pids are ever signalled.
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
  # Runtime state only; images and build cache live in the data root and survive.
  if [[ -d "$EXEC_ROOT" ]]; then
    # netns files may be bind mounts; unmount anything under the exec root first.
    awk -v r="$EXEC_ROOT/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$EXEC_ROOT"
  fi
  rm -f "$SOCK" "$PIDFILE"
}

# Start our dockerd (after cleanup_stale) and wait until it answers. $1 names it in messages.
start_dockerd() {
  local what="${1:-dockerd}"
  cleanup_stale
  log "starting $what (log: $LOG)"
  : >> "$LOG"
  printf '\n===== %s: dockerd start =====\n' "$(date -Is)" >> "$LOG"
  # Detach completely (own session, no inherited stdout/stderr) so that
  # `eval "$(scripts/engine.sh)"` does not wait for dockerd to exit; fd 9 (our lock) is
  # closed too. PATH puts our prefix first: dockerd finds containerd,
  # containerd-shim-runc-v2, docker-proxy and docker-init there.
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

# buildx works and its current builder is the docker driver (dockerd's embedded BuildKit):
# the default builder of the default context, made current in our docker config.
check_buildx() {
  dk buildx version >/dev/null 2>&1 || die "docker buildx does not work (plugin: $DOCKER_CONFIG_DIR/cli-plugins)"
  dk buildx use default >/dev/null 2>&1 || true
  local driver
  driver="$(dk buildx inspect 2>/dev/null | awk '/^Driver:/ { print $2; exit }')"
  [[ "$driver" == docker ]] || die "current buildx builder uses driver '$driver', expected 'docker'"
}

# One line on stderr with the versions this engine runs: dockerd, containerd, the docker CLI,
# buildx and the BuildKit inside dockerd (as `docker buildx inspect` reports it). Unstable
# moves, so every run says what it used.
print_versions() {
  local dockerd containerd cli buildx buildkit
  dockerd="$(dk version -f '{{.Server.Version}}' 2>/dev/null || echo '?')"
  containerd="$(dk version -f '{{range .Server.Components}}{{if eq .Name "containerd"}}{{.Version}}{{end}}{{end}}' 2>/dev/null || true)"
  cli="$(dk version -f '{{.Client.Version}}' 2>/dev/null || echo '?')"
  buildx="$(dk buildx version 2>/dev/null | awk '{ print $2; exit }')"
  buildkit="$(dk buildx inspect 2>/dev/null | awk -F': *' 'tolower($1) ~ /^buildkit( version)?$/ { print $2; exit }')"
  # Debian's docker.io builds dockerd's vendored BuildKit without a version stamp.
  [[ "$buildkit" == v0.0.0+unknown ]] && buildkit+=" (dockerd's vendored BuildKit, unstamped by the Debian build)"
  log "versions: dockerd ${dockerd:-?}, containerd ${containerd:-?}, docker CLI ${cli:-?}, buildx ${buildx:-?}, BuildKit ${buildkit:-?} (DOCKER_HOST=unix://$SOCK)"
}

# Stop our dockerd (SIGTERM, SIGKILL after 30 s), then clean up what it left.
stop_dockerd() {
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
}
