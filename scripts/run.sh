#!/usr/bin/env bash
# Installs dependencies, builds, and starts the llmsync server with the embedded defaults: a SQLite
# store and KV snapshots under ./data, and a small demo model generated there on first start (pass
# --model FILE.gguf to serve a real one). Extra arguments go to `llmsync serve`; see
# `./build/bin/llmsync help serve`. The server's first log lines give its URL (by default
# http://127.0.0.1:8420, OpenAI base URL http://127.0.0.1:8420/v1; tests/cli/readme_test.sh checks
# that serve prints them). Stop it with Ctrl-C (a graceful shutdown).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh build -DCMAKE_BUILD_TYPE=Release
exec ./build/bin/llmsync serve "$@"
