#!/usr/bin/env bash
# Regenerates clients/ts/src/gen (messages and service descriptors for
# Connect-ES v2) offline, with the pinned buf (tools/buf.sh) and the
# protoc-gen-es of clients/ts/package-lock.json. The buf.validate rules are
# stripped from the image first (scripts/strip-validate.mjs): the browser
# bundle carries no validation descriptors. Run from anywhere:
# bash clients/ts/generate.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
if [ ! -x clients/ts/node_modules/.bin/protoc-gen-es ]; then
  (cd clients/ts && npm ci --no-audit --no-fund --silent >&2)
fi
if [ ! -f third_party/proto/buf/validate/validate.proto ]; then
  (cd tools && go run ./protoprint -out ../third_party/proto)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash tools/buf.sh build -o "$tmp/full.binpb" --path proto/cairn/v1
node clients/ts/scripts/strip-validate.mjs "$tmp/full.binpb" "$tmp/api.binpb"
rm -rf clients/ts/src/gen
PATH="$root/clients/ts/node_modules/.bin:$PATH" bash tools/buf.sh generate "$tmp/api.binpb" --template clients/ts/buf.gen.yaml
