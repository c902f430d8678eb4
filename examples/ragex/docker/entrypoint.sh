#!/bin/sh
# ragex entrypoint (the seed's docker/common/entrypoint.sh).
#   docker run IMAGE                          → ragex info (the image's CMD)
#   docker run IMAGE search 'def main' /code  → ragex search 'def main' /code
#   docker run IMAGE sh -c '…'                → runs the command as is
set -eu
case "${1:-}" in
  search|symbols|info|--version|-h|--help)
    exec python3 -m ragex "$@"
    ;;
esac
if [ "$#" -gt 0 ] && command -v "$1" >/dev/null 2>&1; then
  exec "$@"
fi
exec python3 -m ragex "$@"
