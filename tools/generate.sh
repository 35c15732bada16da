#!/usr/bin/env bash
# Regenerates the Go code for proto/ offline: prints buf/validate/validate.proto
# from the pinned protovalidate Go module, then runs buf with the plugins
# pinned in tools/go.mod. Run from anywhere: bash tools/generate.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/buf.sh --version >/dev/null
rm -rf third_party/proto
(cd tools && go run ./protoprint -out ../third_party/proto)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd tools && GOBIN="$bin" go install google.golang.org/protobuf/cmd/protoc-gen-go connectrpc.com/connect/v2/cmd/protoc-gen-connect-go)
PATH="$bin:$PATH" bash tools/buf.sh generate
