#!/usr/bin/env bash
# scripts/engine.sh — start (or reuse) a private Docker/BuildKit engine for layerstack: Debian
# trixie's dockerd 26.1 (the second engine the integration suite runs on; scripts/test-26.sh),
# or, with LAYERSTACK_ENGINE_FLAVOUR=current (what scripts/engine-current.sh sets), Debian
# unstable's current Docker (dockerd 28.x, containerd 2.x, buildx 0.29+), the main engine of
# scripts/run.sh and scripts/test.sh. Both can run at once. See docs/engines.md.
#
# Usage:
#   eval "$(scripts/engine.sh)"      # install if needed, start if needed, export env
#   scripts/engine.sh env            # same as above (explicit)
#   scripts/engine.sh status         # exit 0 iff our engine answers (prints nothing on stdout)
#   scripts/engine.sh versions       # dockerd, containerd, CLI, buildx, BuildKit (on stderr)
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
#     docker-buildx (0.13) and containerd (1.7) .debs — or sid's (dockerd 28.5, buildx
#     0.29, containerd 2.1; they need glibc 2.34, bookworm has 2.36) — fetched with a
#     PRIVATE apt configuration (the host's apt sources are left alone) and unpacked with
#     `dpkg -x` into $LAYERSTACK_ENGINE_PREFIX. trixie's and sid's runc would not run
#     (glibc 2.38+), so it is never fetched: bookworm's runc 1.1.5 is used instead.
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
#   LAYERSTACK_DEBIAN_MIRROR  [http://deb.debian.org/debian] (LAYERSTACK_TRIXIE_MIRROR: old name)
#   LAYERSTACK_ENGINE_FLAVOUR [26]  `current`: the sid engine, with its own knobs (prefix,
#                             state, suite, bridge): see scripts/engine-current.sh
#   LAYERSTACK_EMULATE        [arm64 on amd64, amd64 on arm64] Debian arch names to
#                             run under QEMU; empty: none
set -euo pipefail

# Which engine: `26` (this script's default: trixie's dockerd 26.1) or `current` (Debian
# unstable's Docker; scripts/engine-current.sh runs this script with LAYERSTACK_ENGINE_FLAVOUR=current).
FLAVOUR="${LAYERSTACK_ENGINE_FLAVOUR:-26}"
CACHE="${LAYERSTACK_CACHE:-/var/cache/layerstack}"
TIMEOUT="${LAYERSTACK_ENGINE_TIMEOUT:-90}"
MIRROR="${LAYERSTACK_DEBIAN_MIRROR:-${LAYERSTACK_TRIXIE_MIRROR:-http://deb.debian.org/debian}}"
case "$FLAVOUR" in
  26)
    SUITE=trixie
    PREFIX="${LAYERSTACK_ENGINE_PREFIX:-/opt/layerstack-engine}"
    STATE="${LAYERSTACK_ENGINE_STATE:-/var/lib/layerstack-engine}"
    DEBS="$CACHE/debs"                # engine-old.sh looks for trixie's buildx .deb here
    BRIDGE=""                         # docker0, dockerd's default
    LOG_TAG=engine
    ;;
  current)
    SUITE="${LAYERSTACK_CURRENT_ENGINE_SUITE:-sid}"
    PREFIX="${LAYERSTACK_CURRENT_ENGINE_PREFIX:-/opt/layerstack-engine-current}"
    STATE="${LAYERSTACK_CURRENT_ENGINE_STATE:-/var/lib/layerstack-engine-current}"
    DEBS="$CACHE/debs-$SUITE"
    BRIDGE="${LAYERSTACK_CURRENT_ENGINE_BRIDGE:-lscur0}"
    CIDR="${LAYERSTACK_CURRENT_ENGINE_CIDR:-172.30.0.1/24}"
    LOG_TAG=engine-current
    ;;
  *)
    printf '[engine] ERROR: LAYERSTACK_ENGINE_FLAVOUR=%s (use 26 or current)\n' "$FLAVOUR" >&2
    exit 1
    ;;
esac

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

# The .debs we take from $SUITE. Keep in sync with the check in `installed`.
SUITE_PKGS=(docker.io docker-cli docker-buildx containerd)
# Host (bookworm) packages: runc for the engine, tini as docker-init (`docker
# run --init`), debootstrap for base images,
# plus the libraries dockerd is linked against (normally present already).
HOST_PKGS=(runc tini debootstrap ca-certificates xz-utils iproute2 util-linux
           libsystemd0 libcap2 libgcrypt20 liblzma5 libzstd1 liblz4-1)
# Host (bookworm) packages for foreign platforms (only when EMULATE is not empty).
EMU_PKGS=(qemu-user-static binfmt-support)

# log, die, dk, answering, pid_alive, print_env, lock_engine, install_host_packages, debian_apt,
# deb_versions, ensure_bridge, cleanup_stale, start_dockerd, check_buildx, print_versions,
# stop_dockerd (shared with scripts/engine-old.sh).
# shellcheck source-path=SCRIPTDIR source=lib/engine-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/engine-common.sh"

# ---------------------------------------------------------------- install ---

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
  local apt_dir="$CACHE/apt-$SUITE" started=$SECONDS
  mkdir -p "$DEBS"
  log "fetching $SUITE package lists (private apt config in $apt_dir)"
  debian_apt "$SUITE" "$apt_dir" update -qq >&2
  log "downloading ${SUITE_PKGS[*]} from $SUITE"
  (cd "$DEBS" && rm -f ./*.deb && debian_apt "$SUITE" "$apt_dir" download "${SUITE_PKGS[@]}" >&2)

  local tmp="$PREFIX/root.new.$$" d
  rm -rf "$tmp"; mkdir -p "$tmp"
  for d in "$DEBS"/*.deb; do dpkg -x "$d" "$tmp"; done
  # Never use a runc from trixie or sid (their glibc is too new for bookworm); bookworm's
  # runc 1.1.5 (a host package) is on PATH.
  rm -f "$tmp/usr/bin/runc" "$tmp/usr/sbin/runc"
  # Service files are not used (no init integration).
  rm -rf "$tmp/etc/init.d" "$tmp/etc/init" "$tmp/etc/default" "$tmp/lib/systemd" "$tmp/usr/lib/systemd"
  rm -rf "$ROOT"; mv "$tmp" "$ROOT"
  deb_versions "$DEBS" > "$PREFIX/VERSIONS"
  log "installed into $ROOT in $((SECONDS - started))s:"; sed "s/^/[$LOG_TAG]   /" "$PREFIX/VERSIONS" >&2
}

write_config() {
  # Besides the shared keys (scripts/lib/engine-common.sh):
  #  - containerd-snapshotter: containerd image store; needed for
  #    multi-platform and OCI exports (BuildKit v0.13.2 inside dockerd 26.1).
  #  - ip6tables false, like iptables: we touch no host firewall rule and no
  #    sysctl. The default bridge (docker0) still exists, because BuildKit runs
  #    `# syntax=` frontend containers and sandboxed RUN steps on it ("network
  #    bridge not found" without it), but nothing on it is routed beyond this
  #    machine. Builds that need PyPI/Debian use --network=host.
  #  - bridge (current flavour only): its own bridge; docker0 is the dockerd 26 engine's.
  local own='"ip6tables": false
"features": { "containerd-snapshotter": true }'
  [[ -n "$BRIDGE" ]] && own+=$'\n'"\"bridge\": \"$BRIDGE\""
  write_engine_config "$ROOT/usr/libexec/docker/cli-plugins/docker-buildx" "$own"
  # docker.io ships docker-init -> tini-static (from trixie's tini, not fetched):
  # point it at bookworm's tini-static instead.
  ln -sfn /usr/bin/tini-static "$ROOT/usr/bin/docker-init"
}

# ------------------------------------------------------------ start/stop ---

# cleanup_stale, start_dockerd, check_buildx and stop_dockerd: scripts/lib/engine-common.sh.

# ------------------------------------------------------------------- main ---

cmd="${1:-env}"
case "$cmd" in
  env|start|"")
    # Fast path: our engine already answers (and foreign platforms are set up).
    if answering && emulation_ready; then print_env; exit 0; fi
    lock_engine   # one starter at a time
    # Before dockerd starts, so BuildKit sees the emulators from the first build on.
    ensure_binfmt || log "WARNING: cannot run ${EMULATE} binaries under QEMU here; builds for those platforms will fail"
    if ! answering; then
      install_host_packages
      install_engine
      write_config
      if [[ -n "$BRIDGE" ]]; then ensure_bridge; fi
      start_dockerd "dockerd ($FLAVOUR, $SUITE)"
    fi
    check_buildx
    print_env
    ;;
  versions)
    answering || die "the engine does not answer on $SOCK (start it: eval \"\$(scripts/$( [[ $FLAVOUR == current ]] && echo engine-current.sh || echo engine.sh ))\")"
    print_versions
    ;;
  status)
    answering
    ;;
  emulation)
    lock_engine
    ensure_binfmt || die "foreign platforms ($EMULATE) cannot run under QEMU here"
    ;;
  stop)
    lock_engine
    stop_dockerd
    if [[ -n "$BRIDGE" ]]; then remove_bridge; fi
    ;;
  *)
    die "unknown command '$cmd' (use: env | status | versions | stop | emulation)"
    ;;
esac
