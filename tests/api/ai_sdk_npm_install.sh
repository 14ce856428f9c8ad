#!/usr/bin/env bash
# Installs the Vercel AI SDK (`ai` and `@ai-sdk/openai`, pinned) into DIR (idempotent), for
# ai_sdk_tools_test.mjs. Exit 77 (ctest: skipped) when npm is not installed.
set -euo pipefail
dir="$1"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "SKIP: node/npm not found on PATH; the AI SDK test needs them" >&2
  exit 77
fi
mkdir -p "$dir"
if [[ -f "$dir/node_modules/ai/package.json" && -f "$dir/node_modules/@ai-sdk/openai/package.json" ]]; then
  echo "ai $(node -p "require('$dir/node_modules/ai/package.json').version") already installed in $dir"
  exit 0
fi
cd "$dir"
[[ -f package.json ]] || echo '{"name": "llmsync-ai-sdk-test", "private": true}' > package.json
npm install --no-audit --no-fund --loglevel=error ai@5.0.277 @ai-sdk/openai@2.0.131
echo "installed ai $(node -p "require('./node_modules/ai/package.json').version")"
