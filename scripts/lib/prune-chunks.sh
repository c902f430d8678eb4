# shellcheck shell=bash
# integration_in_chunks [ARGS…]: `cargo test -p integration-tests` (its unit tests, then its test
# files six at a time, ARGS after `--` for each), pruning the engine's build cache after every
# chunk, so a small disk holds the suite: no test reads another file's cache, and images (the
# base images, the frontend's) stay. Sourced by scripts/test.sh and scripts/test-26.sh when
# LAYERSTACK_TEST_PRUNE=1 (.ci/run sets it on a tidy run). Returns 1 if any chunk failed.
integration_in_chunks() {
  local rc=0 i t files args
  cargo test -p integration-tests --locked --lib -- --test-threads=2 || rc=1
  mapfile -t files < <(cd integration-tests/tests && ls -- *.rs | sed 's/\.rs$//')
  for ((i = 0; i < ${#files[@]}; i += 6)); do
    args=()
    for t in "${files[@]:i:6}"; do args+=(--test "$t"); done
    cargo test -p integration-tests --locked --no-fail-fast "${args[@]}" -- "$@" || rc=1
    docker builder prune -af >/dev/null 2>&1 || true
    echo "test: pruned the build cache after ${files[*]:i:6}; $(df -h --output=avail /var/lib | tail -1 | tr -d ' ') free on /var/lib" >&2
  done
  return "$rc"
}
