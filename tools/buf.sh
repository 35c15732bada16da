#!/usr/bin/env bash
# Runs the pinned buf CLI (npm package @bufbuild/buf, version in
# tools/package.json), installing it on first use.
set -euo pipefail
tools=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$tools/node_modules/.bin/buf" ]; then
  (cd "$tools" && npm ci --no-audit --no-fund --silent >&2)
fi
exec "$tools/node_modules/.bin/buf" "$@"
