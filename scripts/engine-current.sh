#!/usr/bin/env bash
# scripts/engine-current.sh — start (or reuse) the CURRENT Docker for layerstack: Debian
# unstable's (sid) docker.io (dockerd 28.x), docker-cli, docker-buildx (0.29.x) and containerd
# (2.1.x), unpacked with `dpkg -x` and run on bookworm with bookworm's runc 1.1.5 (sid's runc
# needs glibc 2.38). The engine of scripts/run.sh and the main engine of scripts/test.sh.
#
# Usage (the same commands and contract as scripts/engine.sh, which does the work with
# LAYERSTACK_ENGINE_FLAVOUR=current):
#   eval "$(scripts/engine-current.sh)"    # install if needed, start if needed, export env
#   scripts/engine-current.sh status       # exit 0 iff it answers (nothing on stdout)
#   scripts/engine-current.sh versions     # dockerd, containerd, CLI, buildx, BuildKit (stderr)
#   scripts/engine-current.sh stop         # stop its dockerd (and the containerd it spawned)
#
# Contract: on stdout ONLY `export VAR=value` lines (DOCKER_HOST, DOCKER_CONFIG, PATH).
#
# It runs beside scripts/engine.sh's dockerd 26 and scripts/engine-old.sh's dockerd 20.10:
# own prefix, state dir, socket, data root, exec root, containerd and bridge. Unstable moves:
# what it installs is whatever sid has on the day of the first install (recorded in
# $PREFIX/VERSIONS; delete the prefix to update); `versions` says what a run used.
#
# Environment knobs (defaults in brackets):
#   LAYERSTACK_CURRENT_ENGINE_PREFIX  [/opt/layerstack-engine-current]     unpacked .debs
#   LAYERSTACK_CURRENT_ENGINE_STATE   [/var/lib/layerstack-engine-current] data root, config, log, socket
#   LAYERSTACK_CURRENT_ENGINE_SUITE   [sid]                                Debian suite of the .debs
#   LAYERSTACK_CURRENT_ENGINE_BRIDGE  [lscur0]                             its bridge (docker0 is dockerd 26's)
#   LAYERSTACK_CURRENT_ENGINE_CIDR    [172.30.0.1/24]                      the bridge's address
#   LAYERSTACK_CACHE, LAYERSTACK_ENGINE_TIMEOUT, LAYERSTACK_DEBIAN_MIRROR, LAYERSTACK_EMULATE:
#                                     as for scripts/engine.sh
set -euo pipefail
LAYERSTACK_ENGINE_FLAVOUR=current exec "$(dirname "${BASH_SOURCE[0]}")/engine.sh" "$@"
