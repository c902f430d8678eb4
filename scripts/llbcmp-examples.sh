#!/usr/bin/env bash
# Feeds the LLB of every target of every shipped stack (stack.toml and examples/*/stack.toml),
# on every platform it is built for, native and cross-installed, with and without MergeOp and
# for each network mode, to `llbcmp`: BuildKit's own Go code re-marshals each op and reports
# the ones whose bytes (and so digests) differ from ours. BuildKit keys source maps and errors
# by the re-marshalled digest, so any difference loses the stack.toml excerpt of failing steps.
#
# Usage: scripts/llbcmp-examples.sh            (LLBCMP=path, LLB_GEN=path to override)
# Exit: 0 when every op of every definition re-marshals identically, 1 on any difference or
# llb-gen failure, 2 when llbcmp is missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

llbcmp=${LLBCMP:-}
if [ -z "$llbcmp" ]; then
    if [ -x /opt/buildkit-v0.32.2/bin/llbcmp ]; then
        llbcmp=/opt/buildkit-v0.32.2/bin/llbcmp
    else
        llbcmp=$(command -v llbcmp || true)
    fi
fi
if [ -z "$llbcmp" ] || [ ! -x "$llbcmp" ]; then
    echo "llbcmp-examples: llbcmp not found (set LLBCMP, or build it with LLBCMP=1 ../shared/engines/build-buildkitd.sh)" >&2
    exit 2
fi

llb_gen=${LLB_GEN:-}
if [ -z "$llb_gen" ]; then
    cargo build -q -p llb-gen --bin llb-gen
    llb_gen=${CARGO_TARGET_DIR:-$root/target}/debug/llb-gen
fi

platforms_all="linux/amd64 linux/arm64"
# Each line is one set of extra flags.
flag_sets=$'\n--merge --network host\n--network none'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

defs=0 ops=0 bad=0
run() { # stack target platform build-platform flags...
    local stack=$1 target=$2 platform=$3 build=$4
    shift 4
    local what="$stack --target $target --platform $platform --build-platform $build${*:+ $*}"
    if ! "$llb_gen" llb "$stack" --target "$target" --platform "$platform" \
        --build-platform "$build" "$@" >"$tmp/def" 2>"$tmp/err"; then
        echo "FAIL llb-gen $what:" >&2
        sed 's/^/    /' "$tmp/err" >&2
        bad=$((bad + 1))
        return
    fi
    defs=$((defs + 1))
    if "$llbcmp" <"$tmp/def" >"$tmp/out" 2>&1; then
        ops=$((ops + $(sed -n 's/^\([0-9]*\) ops re-marshal to identical bytes, 0 differ$/\1/p' "$tmp/out")))
    else
        echo "DIFF $what:" >&2
        sed 's/^/    /' "$tmp/out" >&2
        bad=$((bad + 1))
    fi
}

stacks=(stack.toml)
for f in examples/*/stack.toml; do stacks+=("$f"); done

for stack in "${stacks[@]}"; do
    listing=$("$llb_gen" targets "$stack")
    # Services and layers: the lines before the variants block.
    names=$(printf '%s\n' "$listing" | sed '/^$/,$d' | awk '{print $1}')
    # Variants: "  NAME[ (default)]: platforms P1, P2[, torch …][ — …]".
    variants=$(printf '%s\n' "$listing" | sed -n 's/^  \([A-Za-z0-9_.-]*\)\( (default)\)\{0,1\}: platforms \(.*\)$/\1 \3/p' |
        sed -e 's/ — .*//' -e 's/, torch .*//' -e 's/,//g')
    for name in $names; do
        if [ -z "$variants" ]; then
            targets=("$name|$platforms_all")
        else
            targets=()
            while read -r v plats; do
                [ "$plats" = any ] && plats=$platforms_all
                targets+=("$name@$v|$plats")
            done <<<"$variants"
        fi
        for t in "${targets[@]}"; do
            target=${t%%|*}
            for platform in ${t#*|}; do
                for build in $platforms_all; do
                    while IFS= read -r flags; do
                        # shellcheck disable=SC2086 # flags are words
                        run "$stack" "$target" "$platform" "$build" $flags
                    done <<<"$flag_sets"
                done
            done
        done
    done
done

echo "llbcmp-examples: $defs definitions, $ops ops re-marshal to identical bytes; $bad failing"
[ "$bad" -eq 0 ]
