#!/usr/bin/env bash
# Installs the official `openai` npm package into DIR (idempotent), for openai_client_test.mjs.
# Exit 77 (ctest: skipped) when npm is not installed; any other failure (an unreachable registry)
# fails loudly.
set -euo pipefail
dir="$1"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "SKIP: node/npm not found on PATH; the OpenAI client test needs them" >&2
  exit 77
fi
mkdir -p "$dir"
if [[ -f "$dir/node_modules/openai/package.json" ]]; then
  echo "openai $(node -p "require('$dir/node_modules/openai/package.json').version") already installed in $dir"
  exit 0
fi
cd "$dir"
[[ -f package.json ]] || echo '{"name": "llmsync-openai-client-test", "private": true}' > package.json
npm install --no-audit --no-fund --loglevel=error openai@6.49.0  # pinned: the version the tests were written against
echo "installed openai $(node -p "require('./node_modules/openai/package.json').version")"
