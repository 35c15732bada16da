#!/usr/bin/env bash
# Bundle size of the same small todo app (auth, documents, realtime, an
# upload) with @cairn/client, appwrite and pocketbase: esbuild, minified,
# ESM for browsers, then gzip -9. Run from anywhere: bash clients/ts/bench/size.sh
set -euo pipefail
bench=$(cd "$(dirname "$0")" && pwd)
ts=$(cd "$bench/.." && pwd)
[ -x "$ts/node_modules/.bin/esbuild" ] || (cd "$ts" && npm ci --no-audit --no-fund --silent >&2)
[ -d "$bench/node_modules/appwrite" ] || (cd "$bench" && npm ci --no-audit --no-fund --silent >&2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-22s %10s %10s\n' app minified gzip
for app in cairn appwrite pocketbase; do
  "$ts/node_modules/.bin/esbuild" "$bench/$app.ts" --bundle --minify --format=esm --platform=browser \
    --target=es2022 --outfile="$out/$app.js" --log-level=error
  printf '%-22s %10s %10s\n' "$app" "$(wc -c <"$out/$app.js")" "$(gzip -9c "$out/$app.js" | wc -c)"
done
