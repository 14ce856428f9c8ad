#!/usr/bin/env bash
# Installs dependencies, builds, and starts llmsync's main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh build -DCMAKE_BUILD_TYPE=Release
exec ./build/bin/llmsync version "$@"
