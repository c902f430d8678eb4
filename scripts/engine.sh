#!/usr/bin/env bash
# scripts/engine.sh — start (or reuse) a private Docker/BuildKit engine for layerstack.
#
# Usage:
#   eval "$(scripts/engine.sh)"      # install if needed, start if needed, export env
#   scripts/engine.sh env            # same as above (explicit)
#   scripts/engine.sh status         # exit 0 iff our engine answers (prints nothing on stdout)
#   scripts/engine.sh emulation      # only make sure foreign platforms run under QEMU (see below);
#                                    # exit 1 if that cannot be done (prints nothing on stdout)
#   scripts/engine.sh stop           # stop our dockerd (and the containerd it spawned)
#
# Contract: on stdout this script prints ONLY `export VAR=value` lines
# (DOCKER_HOST, DOCKER_CONFIG, PATH), so callers can eval it. Everything else
# (progress, apt output, errors) goes to stderr.
#
# What it sets up (all idempotent; a re-run with the engine up takes well under a second):
#   * Host packages from the machine's own apt sources (bookworm): runc (the
#     engine's OCI runtime), debootstrap (for scripts/base-images.sh) and the
#     shared libraries dockerd links against.
#   * Debian trixie's docker.io (dockerd 26.1 with BuildKit v0.13), docker-cli,
#     docker-buildx (0.13) and containerd (1.7) .debs, fetched with a PRIVATE apt
#     configuration (the host's apt sources are left alone) and unpacked with
#     `dpkg -x` into $LAYERSTACK_ENGINE_PREFIX. They run fine on bookworm;
#     trixie's runc would not (newer glibc), so it is never fetched: bookworm's
#     runc is used instead.
#   * dockerd started in the background with its own socket, data root and exec
#     root, so it never collides with a system docker on /var/run/docker.sock.
#     It spawns its own containerd. The containerd image store
#     ("containerd-snapshotter") is on: multi-platform builds and OCI export need it.
#     No iptables rules or sysctls are touched, so containers on the default
#     bridge reach nothing beyond this machine: builds that need the network
#     use `docker buildx build --network=host` (dockerd allows the network.host
#     entitlement by default), `docker run` that needs it uses --network=host.
#   * Foreign platforms under QEMU (`--platform linux/arm64` on an amd64 machine):
#     bookworm's qemu-user-static + binfmt-support, binfmt_misc mounted, and the
#     emulator registered with the F ("fix binary") flag, so the kernel opens the
#     interpreter once at registration and it works inside containers and chroots
#     that do not contain it. BuildKit notices registered emulators by itself
#     (`docker buildx inspect` lists linux/arm64). This is kernel-wide state: it
#     is checked on every run (cheaply) and redone after a reboot. If it cannot
#     be set up (no binfmt_misc, no permission) `env` only warns: native builds
#     still work.
#
# Environment knobs (defaults in brackets):
#   LAYERSTACK_ENGINE_PREFIX  [/opt/layerstack-engine]   unpacked .debs
#   LAYERSTACK_ENGINE_STATE   [/var/lib/layerstack-engine] data root, config, log, socket
#   LAYERSTACK_CACHE          [/var/cache/layerstack]     downloaded .debs, private apt lists
#   LAYERSTACK_ENGINE_TIMEOUT [90]                        seconds to wait for dockerd
#   LAYERSTACK_TRIXIE_MIRROR  [http://deb.debian.org/debian]
#   LAYERSTACK_EMULATE        [arm64 on amd64, amd64 on arm64] Debian arch names to
#                             run under QEMU; empty: none
set -euo pipefail

PREFIX="${LAYERSTACK_ENGINE_PREFIX:-/opt/layerstack-engine}"
STATE="${LAYERSTACK_ENGINE_STATE:-/var/lib/layerstack-engine}"
CACHE="${LAYERSTACK_CACHE:-/var/cache/layerstack}"
TIMEOUT="${LAYERSTACK_ENGINE_TIMEOUT:-90}"
MIRROR="${LAYERSTACK_TRIXIE_MIRROR:-http://deb.debian.org/debian}"

ROOT="$PREFIX/root"                 # dpkg -x target
ENGINE_PATH="$ROOT/usr/bin:$ROOT/usr/sbin"
DATA_ROOT="$STATE/data"             # images, containers, build cache
EXEC_ROOT="$STATE/run"              # runtime state (sockets, pids); wiped on a cold start
SOCK="$STATE/docker.sock"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"
DAEMON_JSON="$STATE/daemon.json"
DOCKER_CONFIG_DIR="$STATE/docker-config"
LOCK="$STATE/engine.lock"
NATIVE_ARCH="$(dpkg --print-architecture 2>/dev/null || echo unknown)"
case "$NATIVE_ARCH" in
  amd64) DEFAULT_EMULATE=arm64 ;;
  arm64) DEFAULT_EMULATE=amd64 ;;
  *)     DEFAULT_EMULATE="" ;;
esac
EMULATE="${LAYERSTACK_EMULATE-$DEFAULT_EMULATE}"
BINFMT_DIR=/proc/sys/fs/binfmt_misc

# The .debs we take from trixie. Keep in sync with the check in `installed`.
TRIXIE_PKGS=(docker.io docker-cli docker-buildx containerd)
# Host (bookworm) packages: runc for the engine, tini as docker-init (`docker
# run --init`), debootstrap for base images,
# plus the libraries dockerd is linked against (normally present already).
HOST_PKGS=(runc tini debootstrap ca-certificates xz-utils iproute2 util-linux
           libsystemd0 libcap2 libgcrypt20 liblzma5 libzstd1 liblz4-1)
# Host (bookworm) packages for foreign platforms (only when EMULATE is not empty).
EMU_PKGS=(qemu-user-static binfmt-support)

log() { printf '[engine] %s\n' "$*" >&2; }
die() { printf '[engine] ERROR: %s\n' "$*" >&2; exit 1; }

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
  # Prepend our bin dirs unless they are already in front.
  case ":$PATH:" in
    *":$ROOT/usr/bin:$ROOT/usr/sbin:"*) printf 'export PATH=%q\n' "$PATH" ;;
    *) printf 'export PATH=%q\n' "$ENGINE_PATH:$PATH" ;;
  esac
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

# ------------------------------------------------------------- emulation ---

# Debian arch name -> QEMU's name (binfmt entry qemu-<name>).
qemu_arch() {
  case "$1" in
    amd64) echo x86_64 ;; arm64) echo aarch64 ;; armhf|armel) echo arm ;;
    ppc64el) echo ppc64le ;; *) echo "$1" ;;
  esac
}

# True iff the kernel runs binaries of that QEMU arch with an emulator that
# works inside containers: entry enabled and flags include F.
binfmt_ready() {
  local f="$BINFMT_DIR/qemu-$1"
  [[ -r "$f" ]] && grep -qx enabled "$f" && grep -q '^flags: [A-Z]*F' "$f"
}

emulation_ready() {
  local a
  for a in $EMULATE; do binfmt_ready "$(qemu_arch "$a")" || return 1; done
  return 0
}

# Install qemu-user-static + binfmt-support and register the emulators with the
# F flag. Returns non-zero (with a message) when that is impossible here.
ensure_binfmt() {
  emulation_ready && return 0
  local missing=() p a q f
  for p in "${EMU_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]} (foreign platforms: $EMULATE)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
      || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; } \
      || { log "cannot install ${missing[*]}"; return 1; }
  fi
  if [[ ! -e "$BINFMT_DIR/register" ]]; then
    mount -t binfmt_misc binfmt_misc "$BINFMT_DIR" 2>/dev/null \
      || { log "cannot mount binfmt_misc on $BINFMT_DIR"; return 1; }
  fi
  for a in $EMULATE; do
    q="$(qemu_arch "$a")"; f="$BINFMT_DIR/qemu-$q"
    binfmt_ready "$q" && continue
    if [[ -e "$f" ]]; then
      # Registered without the F flag (or disabled): the interpreter would have
      # to exist inside every container. Replace it with Debian's definition
      # (/usr/share/binfmts/qemu-$q has fix_binary yes).
      log "re-registering qemu-$q (was: $(tr '\n' ' ' < "$f"))"
      echo -1 > "$f" 2>/dev/null || { log "cannot remove the binfmt entry $f"; return 1; }
    fi
    [[ -f "/usr/share/binfmts/qemu-$q" ]] || { log "qemu-user-static has no binfmt definition for $q"; return 1; }
    # --import (re)reads the definition and enables it when binfmt_misc is mounted.
    update-binfmts --import "qemu-$q" >/dev/null 2>&1 || true
    binfmt_ready "$q" || update-binfmts --enable "qemu-$q" >&2 || true
    if ! binfmt_ready "$q"; then
      log "could not register qemu-$q with the F flag: $(tr '\n' ' ' < "$f" 2>/dev/null || echo 'no entry')"
      return 1
    fi
    log "registered qemu-$q for linux/$a ($(grep '^flags:' "$f"))"
  done
}

installed() {
  [[ -x "$ROOT/usr/sbin/dockerd" && -x "$ROOT/usr/bin/docker" && -x "$ROOT/usr/bin/containerd" \
     && -x "$ROOT/usr/bin/containerd-shim-runc-v2" \
     && -x "$ROOT/usr/libexec/docker/cli-plugins/docker-buildx" && -f "$PREFIX/VERSIONS" ]]
}

install_engine() {
  installed && return 0
  local apt_dir="$CACHE/apt-trixie" debs="$CACHE/debs"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$debs"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' "$MIRROR" \
    > "$apt_dir/sources.list"
  # A private apt configuration: own sources, own lists, own cache. Nothing of
  # the host's apt state is read or changed. The host's debian-archive-keyring
  # (bookworm's) already carries the trixie signing keys.
  local apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir"
    -o "Dir::Cache::archives=$apt_dir/archives"
    -o "Dir::Cache::pkgcache="
    -o "Dir::Cache::srcpkgcache="
    -o "APT::Sandbox::User=root"
    -o "Debug::NoLocking=1"
  )
  log "fetching trixie package lists (private apt config in $apt_dir)"
  apt-get "${apt_opts[@]}" update -qq >&2
  log "downloading ${TRIXIE_PKGS[*]} from trixie"
  (cd "$debs" && rm -f ./*.deb && apt-get "${apt_opts[@]}" download "${TRIXIE_PKGS[@]}" >&2)

  local tmp="$PREFIX/root.new.$$" d
  rm -rf "$tmp"; mkdir -p "$tmp"
  for d in "$debs"/*.deb; do dpkg -x "$d" "$tmp"; done
  # Never use a runc from trixie (glibc too new for bookworm); bookworm's is on PATH.
  rm -f "$tmp/usr/bin/runc" "$tmp/usr/sbin/runc"
  rm -rf "$ROOT"; mv "$tmp" "$ROOT"
  # shellcheck disable=SC2016  # ${Package} is dpkg-deb's syntax, not the shell's
  (cd "$debs" && for d in *.deb; do dpkg-deb -W --showformat='${Package} ${Version}\n' "$d"; done) \
    > "$PREFIX/VERSIONS"
  log "installed into $ROOT:"; sed 's/^/[engine]   /' "$PREFIX/VERSIONS" >&2
}

write_config() {
  mkdir -p "$STATE" "$DATA_ROOT" "$DOCKER_CONFIG_DIR/cli-plugins"
  chmod 700 "$STATE"
  # Everything dockerd needs is in daemon.json (no duplicate command-line flags:
  # dockerd refuses to start when a setting is given both ways).
  #  - containerd-snapshotter: containerd image store; needed for
  #    multi-platform and OCI exports (BuildKit v0.13.2 inside dockerd 26.1).
  #  - iptables/ip6tables/ip-forward/ip-masq false: we touch no host firewall
  #    rule and no sysctl. The default bridge (docker0) still exists, because
  #    BuildKit runs `# syntax=` frontend containers and sandboxed RUN steps on
  #    it ("network bridge not found" without it), but nothing on it is routed
  #    beyond this machine. Builds that need PyPI/Debian use --network=host.
  cat > "$DAEMON_JSON.tmp" <<EOF
{
  "hosts": ["unix://$SOCK"],
  "data-root": "$DATA_ROOT",
  "exec-root": "$EXEC_ROOT",
  "pidfile": "$PIDFILE",
  "group": "root",
  "iptables": false,
  "ip6tables": false,
  "ip-forward": false,
  "ip-masq": false,
  "features": { "containerd-snapshotter": true },
  "log-level": "info"
}
EOF
  mv "$DAEMON_JSON.tmp" "$DAEMON_JSON"
  # buildx as a CLI plugin of *our* docker config (works with the trixie CLI
  # and with any other docker CLI that honours DOCKER_CONFIG).
  ln -sfn "$ROOT/usr/libexec/docker/cli-plugins/docker-buildx" "$DOCKER_CONFIG_DIR/cli-plugins/docker-buildx"
  # docker.io ships docker-init -> tini-static (from trixie's tini, not fetched):
  # point it at bookworm's tini-static instead.
  ln -sfn /usr/bin/tini-static "$ROOT/usr/bin/docker-init"
  [[ -f "$DOCKER_CONFIG_DIR/config.json" ]] || echo '{}' > "$DOCKER_CONFIG_DIR/config.json"
}

# ------------------------------------------------------------ start/stop ---

# Kill leftovers of a previous run (dockerd died, machine restarted, ...): our
# dockerd by its pidfile and the containerd it spawned by its pidfile under the
# exec root. Only these two pids are ever signalled.
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
  # Runtime state only; images and build cache live in $DATA_ROOT and survive.
  if [[ -d "$EXEC_ROOT" ]]; then
    # netns files may be bind mounts; unmount anything under the exec root first.
    awk -v r="$EXEC_ROOT/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$EXEC_ROOT"
  fi
  rm -f "$SOCK" "$PIDFILE"
}

start_engine() {
  cleanup_stale
  log "starting dockerd (log: $LOG)"
  : >> "$LOG"
  printf '\n===== %s: dockerd start =====\n' "$(date -Is)" >> "$LOG"
  # Detach completely (own session, no inherited stdout/stderr) so that
  # `eval "$(scripts/engine.sh)"` does not wait for dockerd to exit; fd 9 (our
  # lock) is closed too, or dockerd would hold the lock forever.
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
  # The default builder of the default context is the docker driver, i.e.
  # dockerd's embedded BuildKit. Make it the current one in our config.
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
}

# ------------------------------------------------------------------- main ---

cmd="${1:-env}"
case "$cmd" in
  env|start|"")
    # Fast path: our engine already answers (and foreign platforms are set up).
    if answering && emulation_ready; then print_env; exit 0; fi
    mkdir -p "$STATE"
    exec 9>"$LOCK"
    flock 9   # one starter at a time
    # Before dockerd starts, so BuildKit sees the emulators from the first build on.
    ensure_binfmt || log "WARNING: cannot run ${EMULATE} binaries under QEMU here; builds for those platforms will fail"
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
  emulation)
    mkdir -p "$STATE"
    exec 9>"$LOCK"
    flock 9
    ensure_binfmt || die "foreign platforms ($EMULATE) cannot run under QEMU here"
    ;;
  stop)
    mkdir -p "$STATE"
    exec 9>"$LOCK"
    flock 9
    stop_engine
    ;;
  *)
    die "unknown command '$cmd' (use: env | status | stop | emulation)"
    ;;
esac
