#!/usr/bin/env bash
# scripts/base-images.sh — create layerstack's local base images, without any registry.
#
# Usage:  eval "$(scripts/engine.sh)" && scripts/base-images.sh [--force]
#         (if no engine answers, this script runs scripts/engine.sh itself)
#
# No container registry is reachable here, so `FROM python:3.12-slim` can only
# work against images that already exist in the engine's image store: a local
# image name is resolved before any pull (also for `# syntax=` images). This
# script makes them from Debian packages with debootstrap:
#
#   debian:bookworm-slim   debootstrap --variant=minbase bookworm, trimmed like
#                          Docker's official debian images (docker-clean & co. in
#                          /etc/apt/apt.conf.d, slim dpkg path excludes, deb822
#                          sources incl. bookworm-updates and -security, empty
#                          apt lists). CMD ["bash"].
#   python:3.12-slim       the same + python3, python3-pip, python3-venv,
#   python:3.11-slim       ca-certificates (Debian's Python 3.11 in BOTH tags: the
#                          tags are names the examples use, not a promise about
#                          the interpreter version). Like the official image:
#                          `pip install` works system-wide (EXTERNALLY-MANAGED
#                          removed), `python` and `pip` exist in /usr/local/bin,
#                          ENV PATH and LANG=C.UTF-8, CMD ["python3"].
#
# All images also trust the CA certificates this machine added locally
# (/usr/local/share/ca-certificates/*.crt): package registries are reached
# through a TLS-intercepting proxy with that CA. They are copied into the image's
# /usr/local/share/ca-certificates, so any later `apt-get install ca-certificates`
# picks them up too. (uv ignores the system store unless UV_NATIVE_TLS=1.)
#
# Caching: each root filesystem is kept as a tarball under
# $LAYERSTACK_CACHE/base-images (default /var/cache/layerstack), keyed by
# RECIPE_VERSION, suite, mirror and the local CA certificates. An image whose
# tag already points at the image imported from the current tarball is left
# alone. Bump RECIPE_VERSION whenever the recipe below changes.
set -euo pipefail

RECIPE_VERSION=1
SUITE=bookworm
MIRROR="${LAYERSTACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${LAYERSTACK_CACHE:-/var/cache/layerstack}/base-images"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

T0=$SECONDS
log() { printf '[base-images +%3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { printf '[base-images] ERROR: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------- the engine ---
if ! docker version >/dev/null 2>&1; then
  log "no engine answering (DOCKER_HOST=${DOCKER_HOST:-unset}); running scripts/engine.sh"
  eval "$("$HERE/engine.sh")"
fi

# --------------------------------------------------------------- host tools ---
if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi

shopt -s nullglob
LOCAL_CAS=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob

# The cache key: everything that changes the root filesystems.
KEY="$( { echo "recipe=$RECIPE_VERSION suite=$SUITE mirror=$MIRROR arch=$(dpkg --print-architecture)"
          ((${#LOCAL_CAS[@]})) && cat "${LOCAL_CAS[@]}"; } | sha256sum | cut -c1-16)"
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # one builder at a time

DEBIAN_TAR="$CACHE/debian-$SUITE-slim-$KEY.tar"
PYTHON_TAR="$CACHE/python-$SUITE-slim-$KEY.tar"

# -------------------------------------------------------- rootfs recipes ---

# Files Docker's official debian images carry (debuerreotype), so apt inside
# builds behaves as it does on the real images.
configure_debian() {
  local r="$1"
  install -d "$r/etc/apt/apt.conf.d" "$r/etc/dpkg/dpkg.cfg.d" "$r/etc/apt/sources.list.d"
  cat > "$r/etc/apt/apt.conf.d/docker-clean" <<'EOF'
# Since for most Docker users, package installs happen in "docker build" steps,
# they essentially become individual layers due to the way Docker handles
# layering, especially using CoW filesystems.  What this means for us is that
# the caches that APT keeps end up just wasting space in those layers, making
# our layers unnecessarily large (especially since we'll normally never use
# these caches again and will instead just "docker build" again and make a brand
# new image).

# Ideally, these would just be invoking "apt-get clean", but in our testing,
# that ended up being cyclic and we got stuck on APT's lock, so we get this fun
# creation that's essentially just "apt-get clean".
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };

Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";

# Note that we do realize this isn't the ideal way to do this, and are always
# open to better suggestions (https://github.com/debuerreotype/debuerreotype/issues).
EOF
  echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$r/etc/apt/apt.conf.d/docker-autoremove-suggests"
  echo 'Acquire::GzipIndexes "true";' > "$r/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Acquire::Languages "none";' > "$r/etc/apt/apt.conf.d/docker-no-languages"
  # "slim": no docs, man pages or translations (also for packages installed later).
  cat > "$r/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$r"/usr/share/{groff,info,linda,locale,man}/* "$r"/usr/share/lintian/overrides/*
  # apt sources as in the official image (deb822).
  rm -f "$r/etc/apt/sources.list"
  cat > "$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # The machine's local CAs (picked up by update-ca-certificates, now or later).
  install -d "$r/usr/local/share/ca-certificates"
  ((${#LOCAL_CAS[@]})) && cp "${LOCAL_CAS[@]}" "$r/usr/local/share/ca-certificates/"
  return 0
}

# Runs a command inside the root filesystem (with /proc, /dev, host DNS).
in_root() {
  local r="$1"; shift
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive HOME=/root "$@"
}

mount_pseudo() { mount -t proc proc "$1/proc"; mount --rbind /dev "$1/dev"; mount --make-rslave "$1/dev"; }
umount_pseudo() { umount -l "$1/dev" 2>/dev/null || true; umount -l "$1/proc" 2>/dev/null || true; }

# Leaves no state from building behind: apt lists and caches, logs, DNS, ids.
clean_root() {
  local r="$1"
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
         "$r"/var/cache/apt/archives/partial/* "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
         "$r"/var/log/apt/* "$r"/var/log/dpkg.log "$r"/var/log/alternatives.log "$r"/var/log/bootstrap.log \
         "$r"/tmp/* "$r"/root/.cache "$r"/debootstrap
  find "$r/usr/lib" -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
  : > "$r/etc/resolv.conf"   # docker bind-mounts its own at run time
  : > "$r/etc/hostname"
  [[ -f "$r/etc/machine-id" ]] && : > "$r/etc/machine-id"
  return 0
}

tar_root() {  # tar_root DIR OUT.tar — numeric owners, atomically written
  tar --numeric-owner --xattrs -C "$1" -cf "$2.tmp" . && mv "$2.tmp" "$2"
}

WORK=""
cleanup() {
  if [[ -n "$WORK" && -d "$WORK" ]]; then
    umount_pseudo "$WORK/python"
    rm -rf --one-file-system "$WORK"
  fi
}
trap cleanup EXIT

build_rootfs() {
  WORK="$(mktemp -d "$CACHE/work.XXXXXX")"
  local plain="$WORK/debian" py="$WORK/python"
  log "debootstrap --variant=minbase $SUITE (this is the slow part, ~30s)"
  debootstrap --variant=minbase "$SUITE" "$plain" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  configure_debian "$plain"
  # Python is added to a copy (so both images share the same base packages).
  cp -a "$plain" "$py"
  clean_root "$plain"
  log "writing $DEBIAN_TAR"
  tar_root "$plain" "$DEBIAN_TAR"

  log "installing python3 python3-pip python3-venv ca-certificates (~30s)"
  mount_pseudo "$py"
  in_root "$py" apt-get update -qq >&2
  in_root "$py" apt-get install -y -qq --no-install-recommends \
      python3 python3-pip python3-venv ca-certificates > "$WORK/apt.log" 2>&1 \
    || { tail -n 30 "$WORK/apt.log" >&2; die "apt-get install in the python rootfs failed"; }
  in_root "$py" update-ca-certificates --fresh > "$WORK/ca.log" 2>&1 \
    || { cat "$WORK/ca.log" >&2; die "update-ca-certificates failed"; }
  umount_pseudo "$py"
  # Behave like the official python image: system-wide pip, python/pip names.
  rm -f "$py"/usr/lib/python3*/EXTERNALLY-MANAGED
  ln -sfn /usr/bin/python3 "$py/usr/local/bin/python"
  ln -sfn /usr/bin/pip3 "$py/usr/local/bin/pip"
  clean_root "$py"
  log "writing $PYTHON_TAR"
  tar_root "$py" "$PYTHON_TAR"
  rm -rf --one-file-system "$WORK"; WORK=""
}

# ------------------------------------------------------------------ import ---

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# import_image TAR CMD_JSON TAG... — import once, tag the rest; skip when every
# tag already points at the image recorded for this tarball.
import_image() {
  local tar="$1" cmd="$2"; shift 2
  local stamp="$tar.imported" want="" id t up_to_date=1
  [[ -f "$stamp" ]] && want="$(cat "$stamp")"
  for t in "$@"; do
    [[ -n "$want" && "$(image_id "$t")" == "$want" ]] || up_to_date=0
  done
  if ((up_to_date && !FORCE)); then
    log "up to date: $* ($want)"
    return 0
  fi
  local old_ids=() ; for t in "$@"; do id="$(image_id "$t")"; [[ -n "$id" ]] && old_ids+=("$id"); done
  log "docker import $(basename "$tar") as $*"
  id="$(docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'ENV LANG=C.UTF-8' \
        -c "CMD $cmd" \
        -m "layerstack base image: debootstrap $SUITE ($(basename "$tar"))" \
        "$tar" "$1")"
  for t in "${@:2}"; do docker tag "$1" "$t"; done
  id="$(image_id "$1")"
  echo "$id" > "$stamp"
  # Drop the images these tags pointed at before, if nothing else uses them
  # (`docker image rm` refuses while a container or another tag refers to one).
  for t in "${old_ids[@]}"; do
    if [[ "$t" != "$id" ]]; then docker image rm "$t" >/dev/null 2>&1 || true; fi
  done
}

if ((FORCE)) || [[ ! -f "$DEBIAN_TAR" || ! -f "$PYTHON_TAR" ]]; then
  rm -f "$CACHE"/*.tar "$CACHE"/*.tar.imported   # older recipes' tarballs
  build_rootfs
else
  log "cached root filesystems found (key $KEY)"
fi

import_image "$DEBIAN_TAR" '["bash"]'    debian:bookworm-slim
import_image "$PYTHON_TAR" '["python3"]' python:3.12-slim python:3.11-slim

log "done: $(docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^(debian:bookworm-slim|python:3\.1[12]-slim) ' | paste -sd ',' | sed 's/,/, /g')"
