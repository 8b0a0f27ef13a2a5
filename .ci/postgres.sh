#!/usr/bin/env bash
# The tests start their own throwaway PostgreSQL cluster; they need the server binaries.
set -euo pipefail
for dir in /usr/lib/postgresql/*/bin; do
  if [ -x "$dir/initdb" ]; then exit 0; fi
done
if command -v initdb >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing PostgreSQL server binaries (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
else
  echo "PostgreSQL server binaries (initdb) are needed: install the 'postgresql' package" >&2
  exit 1
fi
