#!/bin/sh
# layerstack TEST STAND-IN for micromamba: runs /opt/micromamba-standin/micromamba.py.
# py-rattler 0.28 occasionally dies on a signal (SIGSEGV/SIGABRT) on a loaded machine; a crash
# is retried (at most twice, said on stderr). Ordinary failures are returned at once.
n=0
while :; do
  /opt/micromamba-standin/bin/python /opt/micromamba-standin/micromamba.py "$@"
  rc=$?
  n=$((n + 1))
  if [ "$rc" -lt 128 ] || [ "$n" -ge 3 ]; then
    exit "$rc"
  fi
  echo "micromamba stand-in: py-rattler crashed (exit $rc); retrying ($n of 2)" >&2
done
