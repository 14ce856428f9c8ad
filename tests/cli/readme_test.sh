#!/usr/bin/env bash
# Runs the README's code blocks against a real server, so a snippet that drifts fails CI.
#
#   readme_test.sh --llmsync BIN --readme README.md --npm-dir DIR --work DIR
#
# Fenced blocks are picked by their info string, in document order:
#   ```sh server     started in the background (the previous server is stopped first); the test
#                    waits for /healthz. `llmsync serve` gets `--listen 127.0.0.1:PORT` appended.
#   ```sh runnable   run with bash -euo pipefail; must exit 0 and print no JSON "error".
#   ```js runnable   an ES module using the `openai` npm package, run with node from DIR (where
#                    the openai_npm_install fixture installed it); skipped when it is absent.
#   ```json config   written to llmsync.json and checked with `llmsync config check`.
# Other blocks (```sh for ./scripts/*.sh) are not run. The README's port 8420 becomes a free port;
# blocks run in a scratch directory where ./build/bin/llmsync is the binary under test and
# model.gguf a tiny generated model.
set -euo pipefail

while [[ $# -gt 0 ]]; do
  case "$1" in
    --llmsync) bin="$(realpath "$2")"; shift 2 ;;
    --readme) readme="$(realpath "$2")"; shift 2 ;;
    --npm-dir) npm_dir="$(realpath -m "$2")"; shift 2 ;;
    --work) work="$(realpath -m "$2")"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

for tool in curl jq python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is needed by the README's snippets" >&2; exit 1; }
done

rm -rf "$work"
mkdir -p "$work/build/bin" "$work/blocks"
ln -s "$bin" "$work/build/bin/llmsync"
cd "$work"
"$bin" model make-test --arch llama --n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 128 \
  --seed 7 --out model.gguf >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Split the README into numbered block files named by kind: 001.sh-server, 002.js-runnable...
awk -v dir="$work/blocks" '
  /^```/ {
    if (inside) { inside = 0; next }
    split(substr($0, 4), info, " ")
    if (info[2] == "server" || info[2] == "runnable" || info[2] == "config") {
      inside = 1; n++; file = sprintf("%s/%03d.%s-%s", dir, n, info[1], info[2]); printf "" > file
    } else {
      inside = 2
    }
    next
  }
  inside == 1 { print > file }
' "$readme"

server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill -TERM -- "-$server_pid" 2>/dev/null || true  # the block's process group: bash and serve
    wait "$server_pid" 2>/dev/null || true
    # bash ends at once; serve shuts down gracefully and holds the data directory's lock until it
    # has, so the next server block waits for the whole group to be gone.
    for _ in $(seq 1 300); do
      kill -0 -- "-$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    server_pid=""
  fi
}
trap stop_server EXIT

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ran=0
for block in blocks/*; do
  kind="${block#blocks/*.}"
  sed -i "s/8420/$port/g; s#llmsync serve#llmsync serve --listen 127.0.0.1:$port#" "$block"
  echo "== $block"
  cat "$block"
  case "$kind" in
    sh-server)
      stop_server
      setsid bash "$block" >"$block.log" 2>&1 &
      server_pid=$!
      for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
      done
      if ! curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
        fail "$block: the server did not come up"; cat "$block.log"; continue
      fi
      grep -q "listening on http://127.0.0.1:$port (OpenAI-compatible base URL http://127.0.0.1:$port/v1)" \
        "$block.log" || fail "$block: serve does not print its URL and /v1 base URL"
      if ! grep -q -- "--model" "$block"; then
        grep -q "weights are random" "$block.log" || fail "$block: no notice that the demo model is random"
      fi
      ;;
    sh-runnable)
      if ! out=$(bash -euo pipefail "$block" 2>&1); then fail "$block exited non-zero"; fi
      echo "$out"
      if grep -q '"error"' <<<"$out"; then fail "$block printed an error"; fi
      ;;
    js-runnable)
      if [[ ! -f "$npm_dir/node_modules/openai/package.json" ]]; then
        echo "SKIP: the openai package is not installed in $npm_dir"
        continue
      fi
      cp "$block" "$npm_dir/readme_snippet.mjs"
      if ! out=$(cd "$npm_dir" && node readme_snippet.mjs 2>&1); then fail "$block exited non-zero"; fi
      echo "$out"
      grep -q "prompt_tokens" <<<"$out" || fail "$block did not print usage"
      ;;
    json-config)
      cp "$block" llmsync.json
      "$bin" config check llmsync.json || fail "$block is not a valid config file"
      ;;
    *) fail "$block: unknown kind $kind" ;;
  esac
  ran=$((ran + 1))
done

[[ $ran -ge 5 ]] || fail "only $ran README blocks ran; the README lost its runnable blocks"
stop_server
if [[ $failures -gt 0 ]]; then
  echo "$failures README block(s) failed" >&2
  exit 1
fi
echo "all $ran README blocks passed"
