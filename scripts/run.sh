#!/usr/bin/env bash
# Installs dependencies, builds, and starts the llmsync server with the embedded defaults: a SQLite
# store and KV snapshots under ./data, and a small demo model generated there on first start (pass
# --model FILE.gguf to serve a real one). Extra arguments go to `llmsync serve`; see
# `./build/bin/llmsync help serve`. Stop it with Ctrl-C (a graceful shutdown).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh build -DCMAKE_BUILD_TYPE=Release
exec ./build/bin/llmsync serve "$@"
