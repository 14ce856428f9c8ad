#!/usr/bin/env bash
# Configures and builds one build tree. Used by run.sh and test.sh.
#   scripts/build.sh DIR [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$1"
shift
jobs="${LLMSYNC_JOBS:-$(nproc)}"
cmake -S . -B "$dir" -G Ninja -DLLMSYNC_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j "$jobs"
