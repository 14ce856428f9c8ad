#!/usr/bin/env bash
# Installs every Debian package llmsync needs to build, test and run. Idempotent: when everything
# is present it prints one line and does nothing; otherwise it runs `apt-get update` once and
# installs only what is missing.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config git clang libclang-rt-14-dev clang-format clang-tidy
  # libraries
  libboost-dev nlohmann-json3-dev libsqlite3-dev libhiredis-dev libpcre2-dev libicu-dev libssl-dev libsodium-dev
  libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  # services and tools used by tests and benchmarks
  redis-server sqlite3 gnuplot-nox curl jq
  # the browser the web page tests drive (tests/web, through puppeteer-core)
  chromium
  # independent oracles (Debian's python3, /usr/bin/python3)
  python3 python3-numpy python3-jinja2
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

# Node.js runs the OpenAI client tests; any node >= 18 on PATH will do.
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
