#!/usr/bin/env bash
# Style gates: clang-format drift (fails on any difference) and clang-tidy's naming checks over
# the sources, using the compile database of a configured build tree.
#   scripts/lint.sh [BUILD_DIR] [--format-only]     (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
format_only="${2:-}"

mapfile -t files < <(git ls-files '*.cpp' '*.h' 2>/dev/null || find include src tests bench -name '*.cpp' -o -name '*.h')
if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "lint: formatting drift; run: clang-format -i \$(git ls-files '*.cpp' '*.h')" >&2
  exit 1
fi
echo "lint: clang-format clean (${#files[@]} files)"

if [ "$format_only" = "--format-only" ]; then
  exit 0
fi

if [ -f "$build/compile_commands.json" ]; then
  mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep -E '^src/.*\.cpp$' || true)
  if [ ${#sources[@]} -gt 0 ]; then
    # clang cannot read GCC's precompiled headers: give clang-tidy the compile commands without
    # the forced include of cmake_pch.hxx (each source includes what it uses anyway).
    tidy_db="$build/tidy-db"
    mkdir -p "$tidy_db"
    sed -E 's# -include [^ ]*cmake_pch\.hxx##g; s# -Winvalid-pch##g' "$build/compile_commands.json" \
      > "$tidy_db/compile_commands.json"
    printf '%s\n' "${sources[@]}" |
      { xargs -P "$(nproc)" -n 8 clang-tidy -p "$tidy_db" --quiet --extra-arg=-Wno-unknown-warning-option 2>&1 || true; } |
      { grep -E "(warning|error):" || true; } > "$build/tidy.log"
    if [ -s "$build/tidy.log" ]; then
      cat "$build/tidy.log" >&2
      echo "lint: clang-tidy naming violations" >&2
      exit 1
    fi
    echo "lint: clang-tidy naming clean (${#sources[@]} sources)"
  fi
fi
