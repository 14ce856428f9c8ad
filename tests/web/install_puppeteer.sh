#!/usr/bin/env bash
# Installs puppeteer-core, pinned by tests/web/package-lock.json, into DIR (idempotent), for
# web_page_test.mjs. Exit 77 (ctest: skipped) when npm or chromium is missing; any other failure
# (an unreachable registry) fails loudly.
set -euo pipefail
dir="$1"
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "SKIP: node/npm not found on PATH; the web page test needs them" >&2
  exit 77
fi
if ! command -v chromium >/dev/null 2>&1 && [[ ! -x /usr/lib/chromium/chromium ]]; then
  echo "SKIP: chromium not found (scripts/setup.sh installs Debian's chromium); the web page test needs it" >&2
  exit 77
fi
mkdir -p "$dir"
want="$(node -p "require('$here/package-lock.json').packages['node_modules/puppeteer-core'].version")"
if [[ -f "$dir/node_modules/puppeteer-core/package.json" ]] &&
   [[ "$(node -p "require('$dir/node_modules/puppeteer-core/package.json').version")" == "$want" ]]; then
  echo "puppeteer-core $want already installed in $dir"
  exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$dir/"
cd "$dir"
npm ci --no-audit --no-fund --loglevel=error
echo "installed puppeteer-core $want"
