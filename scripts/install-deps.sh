#!/usr/bin/env bash
# Install the Debian packages safeinfer needs to build and test, when they are missing.
# Used by `make`, `make test`, `make run` and .ci/run. Needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in build-essential cmake pkg-config protobuf-c-compiler libprotobuf-c-dev libonnx-dev \
         libdnnl-dev ocl-icd-opencl-dev opencl-headers pocl-opencl-icd; do
  have_pkg "$p" || need+=("$p")
done
# python3-onnx and python3-numpy regenerate the example and test models (scripts/) and drive the ONNX Runtime
# comparisons and partition_split: `make test` and .ci/run ask for them (SI_WITH_PYTHON=1); a plain build
# does not need them.
if [ "${SI_WITH_PYTHON:-0}" = 1 ]; then
  for p in python3-onnx python3-numpy; do have_pkg "$p" || need+=("$p"); done
fi
# clang and its compiler-rt (libFuzzer, ASan, UBSan) build the fuzz harnesses (`make fuzz`).
if [ "${SI_WITH_FUZZ:-0}" = 1 ]; then
  for p in clang libclang-rt-dev; do have_pkg "$p" || need+=("$p"); done
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: missing packages ${need[*]} and not root; install them with apt-get" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
