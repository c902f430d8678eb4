#!/usr/bin/env bash
# scripts/rust-builder-image.sh — a local Rust builder image for Dockerfile.frontend's `release`
# target, made without any container registry (where `rust:1.95-bookworm` cannot be pulled).
#
# Usage:  eval "$(scripts/engine.sh)" && scripts/base-images.sh     (debian:bookworm-slim)
#         scripts/rust-builder-image.sh host        [TAG]   default TAG layerstack-rust:host
#         scripts/rust-builder-image.sh debian-sid  [TAG]   default TAG layerstack-rust:debian-sid
# then:   docker buildx build -f Dockerfile.frontend --target release --build-arg RUST_IMAGE=TAG …
#
# Recipes (both FROM the local debian:bookworm-slim, plus gcc and libc6-dev from Debian):
#   host        this machine's rustup toolchain ($RUSTUP_TOOLCHAIN, default the one `rustc`
#               runs; docs left out) in /usr/local/rust. It can only build for the host's
#               architecture: rustup here has no other target, and no rustup is in the image.
#   debian-sid  Debian unstable's rustc and cargo with the standard library for amd64 AND arm64
#               (libstd-rust-dev:arm64 is architecture-independent enough to co-install), so
#               the release target's cross-compile path (BUILDPLATFORM amd64 → TARGETPLATFORM
#               arm64: gcc-aarch64-linux-gnu and a static glibc from libc6-dev-arm64-cross) can
#               be run here. Debian's Rust must be at least the workspace's rust-version.
#               sid's Release file is read with check-valid-until=no: a mirror or snapshot
#               older than this machine's clock would otherwise be refused as expired.
#
# Both set CARGO_HOME=/usr/local/cargo and PATH like the official rust images, so the
# Dockerfile's cache mount of /usr/local/cargo/registry applies unchanged. Builds use
# --network=host (apt and crates.io through this machine's network).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
recipe="${1:-host}"
tag="${2:-layerstack-rust:$recipe}"
log() { printf '[rust-builder-image] %s\n' "$*" >&2; }
die() { printf '[rust-builder-image] ERROR: %s\n' "$*" >&2; exit 1; }

docker version >/dev/null 2>&1 || eval "$("$HERE/engine.sh")"
docker image inspect debian:bookworm-slim >/dev/null 2>&1 \
  || die "no debian:bookworm-slim image: run scripts/base-images.sh first"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT

case "$recipe" in
  host)
    sysroot="$(rustc --print sysroot)"
    host_triple="$(rustc -vV | sed -n 's/^host: //p')"
    [[ -x "$sysroot/bin/cargo" ]] || die "$sysroot/bin/cargo missing (a rustup toolchain with cargo is needed)"
    log "copying $sysroot ($(rustc -V)) without docs"
    mkdir -p "$ctx/rust"
    tar -C "$sysroot" --exclude=./share/doc -cf - . | tar -C "$ctx/rust" -xf -
    [[ -d "$ctx/rust/lib/rustlib/$host_triple/lib" ]] || die "no standard library for $host_triple in $sysroot"
    cat > "$ctx/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN set -eux; apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev; \
    rm -rf /var/lib/apt/lists/*
COPY rust/ /usr/local/rust/
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN set -eux; mkdir -p /usr/local/cargo/bin; rustc -vV; cargo -V
EOF
    ;;
  debian-sid)
    cat > "$ctx/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN set -eux; \
    echo 'deb [check-valid-until=no] http://deb.debian.org/debian sid main' > /etc/apt/sources.list.d/sid.list; \
    printf 'Package: *\nPin: release n=sid\nPin-Priority: 990\n' > /etc/apt/preferences.d/sid; \
    dpkg --add-architecture arm64; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates gcc libc6-dev rustc cargo libstd-rust-dev libstd-rust-dev:arm64; \
    rm -rf /var/lib/apt/lists/*
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN set -eux; mkdir -p /usr/local/cargo/bin; rustc -vV; cargo -V; \
    ls "$(rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu/lib" | grep -q '^libstd-'
EOF
    ;;
  *) die "unknown recipe '$recipe' (host or debian-sid)" ;;
esac

log "building $tag ($recipe)"
docker buildx build --load --network=host -t "$tag" "$ctx" >&2
docker run --rm --pull=never "$tag" rustc -V >&2
echo "$tag"
