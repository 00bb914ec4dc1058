#!/usr/bin/env bash
# Builds Go wasm-reconciler plugins into WebAssembly components.
#
#   guest-sdk/go/build.sh --out DIR [--wit DIR] [PLUGIN_DIR ...]
#
# PLUGIN_DIR is a Go main package that calls sdk.Export from init (default: this repository's
# plugins/myresource-go). Each is written to DIR/<directory name with - as _>.wasm
# (myresource-go -> myresource_go.wasm), through a temporary file and a rename.
#
# Needs Go 1.24+ and cargo (with crates.io). Per plugin:
#   1. GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared  -> a WASI preview1 reactor module
#      exporting metadata, reconcile, cabi_realloc and _initialize;
#   2. go-componentize (componentize/, built once with cargo from wit-component) embeds the
#      WIT world `reconciler` and adapts WASI preview1 to preview2 with the reactor adapter.
# Set GO_COMPONENTIZE to a go-componentize binary to skip step 0 (building it).
set -euo pipefail

SDK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SDK_DIR/../.." && pwd)
OUT=
WIT="$REPO_DIR/wit/0.1.0"
PLUGINS=()

usage() {
  echo "usage: $0 --out DIR [--wit DIR] [PLUGIN_DIR ...]" >&2
  exit "${1:-2}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    --wit) WIT=${2:?--wit needs a directory}; shift 2 ;;
    -h|--help) usage 0 ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) PLUGINS+=("$1"); shift ;;
  esac
done
[ -n "$OUT" ] || usage
[ ${#PLUGINS[@]} -gt 0 ] || PLUGINS=("$REPO_DIR/plugins/myresource-go")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

go_version=$(go env GOVERSION 2>/dev/null) || { echo "build.sh: needs Go 1.24 or newer (go not found)" >&2; exit 1; }
case "$go_version" in
  go1.1[0-9]|go1.1[0-9].*|go1.2[0-3]|go1.2[0-3].*|go1.[0-9]|go1.[0-9].*)
    echo "build.sh: needs Go 1.24 or newer for //go:wasmexport, found $go_version" >&2; exit 1 ;;
esac

COMPONENTIZE=${GO_COMPONENTIZE:-}
if [ -z "$COMPONENTIZE" ]; then
  target=${CARGO_TARGET_DIR:-$SDK_DIR/componentize/target}
  cargo build --quiet --release --locked --manifest-path "$SDK_DIR/componentize/Cargo.toml"
  COMPONENTIZE="$target/release/go-componentize"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for dir in "${PLUGINS[@]}"; do
  started=$(date +%s.%N)
  dir=$(cd "$dir" && pwd)
  name=$(basename "$dir" | tr - _)
  (cd "$dir" && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w' -o "$work/$name.core.wasm" .)
  "$COMPONENTIZE" --wit "$WIT" --world reconciler "$work/$name.core.wasm" "$work/$name.wasm"
  mv "$work/$name.wasm" "$OUT/$name.wasm.tmp"
  mv "$OUT/$name.wasm.tmp" "$OUT/$name.wasm"
  size=$(wc -c < "$OUT/$name.wasm")
  echo "built $OUT/$name.wasm ($(awk "BEGIN{printf \"%.1f\", $size/1e6}") MB) in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N)-$started}") s"
done
