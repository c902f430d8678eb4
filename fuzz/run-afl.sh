#!/usr/bin/env bash
# Coverage-guided fuzzing of the stack.toml pipeline with AFL++ (through cargo-afl).
#
#   fuzz/run-afl.sh [SECONDS]         (default 600; needs `cargo install cargo-afl`)
#
# Builds fuzz/target/afl/release/afl-stack with AFL instrumentation, seeds AFL from the
# invalid-stack corpus, fuzz/seeds and the shipped stacks, and runs one afl-fuzz instance
# (nice'd, one core) for SECONDS. Findings land in fuzz/afl-out/default/{crashes,hangs}.
set -euo pipefail
secs="${1:-600}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export CARGO_TARGET_DIR="$here/target/afl"
cargo afl build --release --features afl --bin afl-stack
rm -rf afl-seeds && mkdir -p afl-seeds
i=0
for f in ../stack.toml ../examples/*/stack.toml ../llb-gen/tests/invalid/*.toml seeds/*.toml; do
  cp "$f" "afl-seeds/$(printf '%03d' $i)-$(basename "$f")"; i=$((i+1))
done
# Containers often pipe core dumps elsewhere and have no cpufreq control: tell AFL it is fine.
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1
export AFL_AUTORESUME=1
nice -n 10 cargo afl fuzz -i afl-seeds -o afl-out -x dict/stack.dict -V "$secs" \
  "$CARGO_TARGET_DIR/release/afl-stack"
echo "--- afl-out/default/fuzzer_stats"
grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg|edges_found)' \
  afl-out/default/fuzzer_stats || true
ls afl-out/default/crashes afl-out/default/hangs 2>/dev/null || true
