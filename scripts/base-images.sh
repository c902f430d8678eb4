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
# Multi-platform: like the official images, each tag is an image INDEX with one
# manifest per platform — linux/amd64 and linux/arm64 by default — so
# `FROM python:3.12-slim` resolves for `--platform linux/arm64` as well (the
# containerd image store keeps the whole index under one name; `docker run
# --platform linux/arm64 python:3.12-slim` picks the arm64 image). A foreign
# architecture's root filesystem is made with `debootstrap --foreign` and the
# second stage runs under QEMU (binfmt_misc; `scripts/engine.sh emulation` sets
# it up). How the index is made, offline: each architecture's tarball is
# `docker import --platform`ed into a temporary tag, then a Dockerfile that is
# only `FROM <temporary tag of $TARGETARCH>` is built with
# `docker buildx build --platform linux/amd64,linux/arm64 -t <tags>`, which
# stores an index in the image store (same layers, same configs as imported).
# `imagetools create` would need a registry.
#
# All images also trust the CA certificates this machine added locally
# (/usr/local/share/ca-certificates/*.crt): package registries are reached
# through a TLS-intercepting proxy with that CA. They are copied into the image's
# /usr/local/share/ca-certificates, so any later `apt-get install ca-certificates`
# picks them up too. (uv ignores the system store unless UV_NATIVE_TLS=1.)
#
# Speed (QEMU makes every process of a foreign architecture ~4x slower): the
# architectures are built in parallel; dpkg runs with force-unsafe-io while
# building (no fsync; removed from the images); and during the Python install
# py3compile and update-ca-certificates are diverted to no-ops: the .pyc files
# under /usr/lib are deleted anyway (like before), and the CA store is built
# once at the end instead of three times (postinst, trigger, ours).
#
# Caching: each root filesystem is kept as a tarball under
# $LAYERSTACK_CACHE/base-images (default /var/cache/layerstack), keyed by
# RECIPE_VERSION, suite, mirror and the local CA certificates, one per
# architecture. The digest of each index made from them is recorded next to
# them; a tag that already points at that index is left alone. Bump
# RECIPE_VERSION whenever the recipe below changes.
#
# Environment knobs (defaults in brackets):
#   LAYERSTACK_BASE_ARCHES     [amd64 arm64]  Debian architecture names
#   LAYERSTACK_DEBIAN_MIRROR   [http://deb.debian.org/debian]
#   LAYERSTACK_CACHE           [/var/cache/layerstack]
set -euo pipefail

RECIPE_VERSION=2
SUITE=bookworm
MIRROR="${LAYERSTACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${LAYERSTACK_CACHE:-/var/cache/layerstack}/base-images"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1
read -r -a ARCHES <<< "${LAYERSTACK_BASE_ARCHES:-amd64 arm64}"
NATIVE_ARCH="$(dpkg --print-architecture)"

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

# Debian architecture -> OCI platform (what --platform and the index say).
oci_platform() {
  case "$1" in
    amd64) echo linux/amd64 ;; arm64) echo linux/arm64 ;; armhf) echo linux/arm/v7 ;;
    i386) echo linux/386 ;; ppc64el) echo linux/ppc64le ;; s390x) echo linux/s390x ;;
    riscv64) echo linux/riscv64 ;; *) die "unsupported architecture '$1' in LAYERSTACK_BASE_ARCHES" ;;
  esac
}
# ... the Dockerfile stage that stands for it when the index is assembled
# (base-$TARGETARCH$TARGETVARIANT: base-amd64, base-arm64, base-armv7, ...) ...
stage_of() { local p; p="$(oci_platform "$1")"; p="${p#linux/}"; echo "base-${p//\//}"; }
# ... and what `uname -m` prints on it (the smoke test after making an index).
uname_m() {
  case "$1" in
    amd64) echo x86_64 ;; arm64) echo aarch64 ;; armhf) echo armv7l ;; i386) echo i686 ;;
    ppc64el) echo ppc64le ;; *) echo "$1" ;;
  esac
}
((${#ARCHES[@]})) || die "LAYERSTACK_BASE_ARCHES is empty"
# Only the containerd image store keeps several platforms under one tag (an
# engine with the classic store, e.g. an old dockerd, gets the native images).
if ((${#ARCHES[@]} > 1)) && ! docker info --format '{{json .DriverStatus}}' 2>/dev/null | grep -q 'io.containerd.snapshotter'; then
  [[ -z "${LAYERSTACK_BASE_ARCHES:-}" ]] \
    || die "LAYERSTACK_BASE_ARCHES='${LAYERSTACK_BASE_ARCHES}': this engine's image store cannot hold multi-platform images"
  log "this engine has the classic image store (no multi-platform images): making $NATIVE_ARCH images only"
  ARCHES=("$NATIVE_ARCH")
fi
PLATFORMS=""
for a in "${ARCHES[@]}"; do PLATFORMS+="${PLATFORMS:+,}$(oci_platform "$a")"; done

# Foreign architectures run under QEMU (debootstrap's second stage, apt, and
# later every RUN step of a build for that platform).
emulated() {  # true iff binaries of that architecture run here (natively or emulated)
  [[ "$1" == "$NATIVE_ARCH" ]] && return 0
  local q; q="$(uname_m "$1")"; [[ "$q" == i686 ]] && q=i386; [[ "$q" == armv7l ]] && q=arm
  local f="/proc/sys/fs/binfmt_misc/qemu-$q"
  [[ -r "$f" ]] && grep -qx enabled "$f" && grep -q '^flags: [A-Z]*F' "$f"
}
for a in "${ARCHES[@]}"; do
  if ! emulated "$a"; then
    log "linux/$a binaries do not run here yet: scripts/engine.sh emulation"
    LAYERSTACK_EMULATE="$a" "$HERE/engine.sh" emulation || die "cannot emulate $a (LAYERSTACK_BASE_ARCHES=$NATIVE_ARCH builds only the native images)"
  fi
done

shopt -s nullglob
LOCAL_CAS=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob

# The cache key: everything that changes the root filesystems (the
# architecture is part of each tarball's name).
KEY="$( { echo "recipe=$RECIPE_VERSION suite=$SUITE mirror=$MIRROR"
          ((${#LOCAL_CAS[@]})) && cat "${LOCAL_CAS[@]}"; } | sha256sum | cut -c1-16)"
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # one builder at a time

debian_tar() { echo "$CACHE/debian-$SUITE-slim-$1-$KEY.tar"; }
python_tar() { echo "$CACHE/python-$SUITE-slim-$1-$KEY.tar"; }

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

# dpkg without fsync while building (much faster, above all under QEMU).
UNSAFE_IO=etc/dpkg/dpkg.cfg.d/zz-layerstack-build-unsafe-io

# Maintainer-script work that is slow under QEMU and whose result we discard or
# redo anyway: replaced by no-ops (dpkg-divert) for the Python install only.
DEFERRED=(/usr/bin/py3compile /usr/sbin/update-ca-certificates)
defer_on() {
  local r="$1" f
  for f in "${DEFERRED[@]}"; do
    in_root "$r" dpkg-divert --quiet --local --rename --divert "$f.layerstack-deferred" --add "$f"
    printf '#!/bin/sh\n# deferred by layerstack scripts/base-images.sh\nexit 0\n' > "$r$f"
    chmod 755 "$r$f"
  done
}
defer_off() {
  local r="$1" f
  for f in "${DEFERRED[@]}"; do
    rm -f "$r$f"
    in_root "$r" dpkg-divert --quiet --local --rename --remove "$f"
    [[ -x "$r$f" ]] || die "$f missing after undoing its diversion"
  done
}

# Leaves no state from building behind: apt lists and caches, logs, DNS, ids.
clean_root() {
  local r="$1"
  rm -f "$r/$UNSAFE_IO"
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

# Work directories of the rootfs builds (one per architecture, built in
# parallel) and of the index builds; the parent removes them, whatever happened.
WORKS=()
CHILDREN=()
remove_work() {  # unmount whatever is mounted below it (proc, dev), then delete
  local m
  awk -v r="$1/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$1"
}
cleanup() {
  local pid w
  for pid in "${CHILDREN[@]}"; do wait "$pid" 2>/dev/null || true; done
  for w in "${WORKS[@]}"; do
    if [[ -d "$w" ]]; then remove_work "$w"; fi
  done
}
trap cleanup EXIT
# Leftovers of a run that was killed (we hold the lock: nobody else builds).
for w in "$CACHE"/work.* "$CACHE"/work-* "$CACHE"/index.*; do
  if [[ -d "$w" ]]; then log "removing leftover $w"; remove_work "$w"; fi
done

# build_rootfs ARCH WORKDIR — both tarballs of one architecture.
build_rootfs() {
  local arch="$1" work="$2" t0=$SECONDS
  local plain="$work/debian" py="$work/python"
  local debian_tar python_tar
  debian_tar="$(debian_tar "$arch")"; python_tar="$(python_tar "$arch")"
  local how="natively"; [[ "$arch" == "$NATIVE_ARCH" ]] || how="under QEMU"
  log "[$arch] debootstrap --variant=minbase $SUITE (first stage: download, extract)"
  debootstrap --arch="$arch" --foreign --variant=minbase "$SUITE" "$plain" "$MIRROR" > "$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "[$arch] debootstrap (first stage) failed"; }
  echo force-unsafe-io > "$plain/$UNSAFE_IO"
  log "[$arch] debootstrap second stage ($how)"
  chroot "$plain" /debootstrap/debootstrap --second-stage >> "$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "[$arch] debootstrap (second stage) failed"; }
  configure_debian "$plain"
  # Python is added to a copy (so both images share the same base packages).
  cp -a "$plain" "$py"
  clean_root "$plain"
  log "[$arch] writing $(basename "$debian_tar")"
  tar_root "$plain" "$debian_tar"

  log "[$arch] installing python3 python3-pip python3-venv ca-certificates ($how)"
  mount_pseudo "$py"
  in_root "$py" apt-get update -qq >&2
  defer_on "$py"
  in_root "$py" apt-get install -y -qq --no-install-recommends \
      python3 python3-pip python3-venv ca-certificates > "$work/apt.log" 2>&1 \
    || { tail -n 30 "$work/apt.log" >&2; die "[$arch] apt-get install in the python rootfs failed"; }
  defer_off "$py"
  in_root "$py" update-ca-certificates --fresh > "$work/ca.log" 2>&1 \
    || { cat "$work/ca.log" >&2; die "[$arch] update-ca-certificates failed"; }
  [[ -s "$py/etc/ssl/certs/ca-certificates.crt" ]] || die "[$arch] empty CA bundle"
  umount_pseudo "$py"
  # Behave like the official python image: system-wide pip, python/pip names.
  rm -f "$py"/usr/lib/python3*/EXTERNALLY-MANAGED
  ln -sfn /usr/bin/python3 "$py/usr/local/bin/python"
  ln -sfn /usr/bin/pip3 "$py/usr/local/bin/pip"
  clean_root "$py"
  log "[$arch] writing $(basename "$python_tar")"
  tar_root "$py" "$python_tar"
  rm -rf --one-file-system "$plain" "$py"
  log "[$arch] root filesystems done in $((SECONDS - t0))s"
}

# ------------------------------------------------------------------ import ---

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# make_index KIND CMD_JSON TAG... — import KIND's (debian|python) tarball of
# every architecture into a temporary tag, assemble the index under all TAGs,
# check that each platform runs, drop the temporary tags. Skipped when every tag
# already points at the index recorded for these tarballs.
make_index() {
  local kind="$1" cmd="$2"; shift 2
  local name="$kind-$SUITE-slim" tar
  # Per engine: engines may share this cache, and each imports on its own
  # (`docker import` stamps the time, so each engine's index digest differs).
  local engine; engine="$(printf '%s' "${DOCKER_HOST:-default}" | sha256sum | cut -c1-8)"
  local stamp="$CACHE/$name-$KEY-$(IFS=-; echo "${ARCHES[*]}")-engine-$engine.index"
  local want="" t id up_to_date=1
  [[ -f "$stamp" ]] && want="$(cat "$stamp")"
  for t in "$@"; do
    [[ -n "$want" && "$(image_id "$t")" == "$want" ]] || up_to_date=0
  done
  if ((up_to_date && !FORCE)); then
    log "up to date: $* ($PLATFORMS index ${want:7:12})"
    return 0
  fi
  local old_ids=(); for t in "$@"; do id="$(image_id "$t")"; [[ -n "$id" ]] && old_ids+=("$id"); done

  local ctx a tmp tags=() ; ctx="$(mktemp -d "$CACHE/index.XXXXXX")"; WORKS+=("$ctx")
  {
    echo "# made by scripts/base-images.sh: one manifest per platform under one tag"
    for a in "${ARCHES[@]}"; do echo "FROM layerstack-base/$name:$a AS $(stage_of "$a")"; done
    # shellcheck disable=SC2016  # the Dockerfile's variables, not the shell's
    echo 'FROM base-${TARGETARCH}${TARGETVARIANT}'
  } > "$ctx/Dockerfile"
  for a in "${ARCHES[@]}"; do
    tmp="layerstack-base/$name:$a"
    tar="$("${kind}_tar" "$a")"
    log "docker import --platform $(oci_platform "$a") $(basename "$tar") as $tmp"
    docker import --platform "$(oci_platform "$a")" \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c 'ENV LANG=C.UTF-8' \
      -c "CMD $cmd" \
      -m "layerstack base image: debootstrap $SUITE $a ($(basename "$tar"))" \
      "$tar" "$tmp" >/dev/null
  done
  for t in "$@"; do tags+=(-t "$t"); done
  log "index for $PLATFORMS as $*"
  docker buildx build --progress=plain --platform "$PLATFORMS" --provenance=false --sbom=false \
      --network=none "${tags[@]}" "$ctx" > "$ctx/build.log" 2>&1 \
    || { tail -n 30 "$ctx/build.log" >&2; die "building the index for $* failed"; }
  id="$(image_id "$1")"
  # Every platform resolves and runs.
  for a in "${ARCHES[@]}"; do
    local m
    m="$(docker run --rm --pull=never --network=none --platform "$(oci_platform "$a")" "$1" uname -m 2>/dev/null)" || m="(failed)"
    [[ "$m" == "$(uname_m "$a")" ]] || die "$1 for $(oci_platform "$a"): uname -m says '$m', want '$(uname_m "$a")'"
  done
  for a in "${ARCHES[@]}"; do docker image rm "layerstack-base/$name:$a" >/dev/null 2>&1 || true; done
  echo "$id" > "$stamp"
  # Drop the images these tags pointed at before, if nothing else uses them
  # (`docker image rm` refuses while a container or another tag refers to one).
  for t in "${old_ids[@]}"; do
    if [[ "$t" != "$id" ]]; then docker image rm "$t" >/dev/null 2>&1 || true; fi
  done
  log "made $* = index ${id:7:12} ($PLATFORMS)"
}

# Which architectures need their root filesystems (re)built.
NEED=()
for a in "${ARCHES[@]}"; do
  if ((FORCE)) || [[ ! -f "$(debian_tar "$a")" || ! -f "$(python_tar "$a")" ]]; then NEED+=("$a"); fi
done
if ((${#NEED[@]})); then
  # Other recipes' tarballs and index records (any other key).
  for f in "$CACHE"/*.tar "$CACHE"/*.tar.imported "$CACHE"/*.index; do
    if [[ -e "$f" && "$f" != *"-$KEY"* ]]; then rm -f "$f"; fi
  done
  log "building root filesystems for ${NEED[*]} in parallel (key $KEY; native: $NATIVE_ARCH)"
  pids=()
  for a in "${NEED[@]}"; do
    w="$(mktemp -d "$CACHE/work-$a.XXXXXX")"; WORKS+=("$w")
    ( build_rootfs "$a" "$w" ) &
    pids+=("$!"); CHILDREN+=("$!")
  done
  failed=()
  for i in "${!NEED[@]}"; do wait "${pids[$i]}" || failed+=("${NEED[$i]}"); done
  ((${#failed[@]} == 0)) || die "root filesystem build failed for: ${failed[*]} (see above)"
else
  log "cached root filesystems found for ${ARCHES[*]} (key $KEY)"
fi

make_index debian '["bash"]'    debian:bookworm-slim
make_index python '["python3"]' python:3.12-slim python:3.11-slim

log "done: $(docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^(debian:bookworm-slim|python:3\.1[12]-slim) ' | paste -sd ',' | sed 's/,/, /g')"
