#!/usr/bin/env bash
# make setup: installs everything deitkd's build, tests and demo need, and nothing twice.
#   - Debian packages: OpenBLAS (the student's BLAS), libjpeg-turbo (JPEG decoding, the same
#     library PIL uses) and the Fashion-MNIST data set (the demo).
#   - The ONNX Runtime shared library, taken from the npm package onnxruntime-node (one file,
#     checked by sha256) into a cache folder outside git.
#   - The Node.js packages the interop tests read our files with (DuckDB, hyparquet with
#     hyparquet-compressors, parquet-wasm, apache-arrow).
# Idempotent: each step checks first and does nothing when its result is already in place.
set -euo pipefail

ORT_VERSION=1.24.3
ORT_SHA256=92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682
CACHE=${DEITKD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deitkd}
ORT_DIR=$CACHE/onnxruntime-$ORT_VERSION
ROOT=$(cd "$(dirname "$0")/.." && pwd)

say() { printf 'setup: %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------------------
need=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || need+=(libopenblas-dev)
dpkg -s libjpeg62-turbo-dev >/dev/null 2>&1 || need+=(libjpeg62-turbo-dev)
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    say "missing Debian packages: ${need[*]} (install them as root: apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

# --- ONNX Runtime ----------------------------------------------------------------------------
lib=$ORT_DIR/libonnxruntime.so.1
if [ -f "$lib" ] && echo "$ORT_SHA256  $lib" | sha256sum -c --status; then
  :
else
  command -v npm >/dev/null || { say "npm is needed to fetch ONNX Runtime (apt-get install npm)" >&2; exit 1; }
  say "fetching ONNX Runtime $ORT_VERSION (npm package onnxruntime-node)"
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
  tar -xzf "$tmp"/onnxruntime-node-$ORT_VERSION.tgz -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  got=$(sha256sum "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | cut -d' ' -f1)
  if [ "$got" != "$ORT_SHA256" ]; then
    say "libonnxruntime.so.1 sha256 $got, expected $ORT_SHA256: refusing it" >&2; exit 1
  fi
  mkdir -p "$ORT_DIR"
  install -m 0644 "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib.tmp"
  mv "$lib.tmp" "$lib"
  say "ONNX Runtime at $lib"
fi

# --- Node.js packages for the interop tests ---------------------------------------------------
# Installed means: every package interop/package.json names is in interop/node_modules at exactly
# the pinned version, so an older node_modules (say, from before hyparquet was added, or with a
# different pin) gets the packages it lacks, and a clean clone gets everything.
interop_installed() {
  command -v node >/dev/null || return 1
  (cd "$ROOT/interop" && node -e '
    const fs = require("fs");
    for (const [name, want] of Object.entries(require("./package.json").dependencies)) {
      let got;
      try { got = JSON.parse(fs.readFileSync(`node_modules/${name}/package.json`, "utf8")).version; } catch { got = null; }
      if (got !== want) process.exit(1);
    }' 2>/dev/null)
}
if ! interop_installed; then
  say "installing interop test packages (interop/package.json)"
  # No lockfile: it would record registry addresses; versions are pinned exactly in package.json.
  (cd "$ROOT/interop" && npm install --silent --no-package-lock --no-audit --no-fund >/dev/null)
fi
say "ok"
