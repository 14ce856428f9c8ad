#!/usr/bin/env bash
# Cache-aware against round-robin dispatch (issue 16, docs/PERFORMANCE.md "Dispatch across engines").
# For each mode: starts a redis-server, ENGINES `llmsync serve --role engine` processes and one
# `--role api --dispatch MODE` process on it, and plays the seeded agent trace through the api
# process (`llmsync bench trace --native-url`). Writes dispatch-<mode>.json to OUT_DIR and the plot
# (bench/plot_dispatch.py) to OUT_DIR/dispatch.svg.
#   bench/dispatch_bench.sh BUILD_DIR OUT_DIR [ENGINES] [extra `bench trace` flags...]
set -euo pipefail
build="$1"
out="$2"
engines="${3:-2}"
shift $(($# < 3 ? $# : 3))
bin="$(cd "$build" && pwd)/bin/llmsync"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
work="$(mktemp -d /tmp/llmsync-dispatch-bench.XXXXXX)"
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 500); do
    curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.02
  done
  echo "llmsync on port $1 did not come up" >&2
  return 1
}

# A small model (the ratio measured does not depend on its size) shared by every process.
model="$work/model.gguf"
"$bin" model make-test --arch llama --readable-vocab --n-embd 128 --n-layer 2 --n-head 4 --n-head-kv 2 \
  --n-ff 256 --seed 3 --out "$model" >/dev/null
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/seal.key"

for mode in round_robin cache_aware; do
  dir="$work/$mode"
  mkdir -p "$dir/redis"
  rport="$(free_port)"
  redis-server --port "$rport" --bind 127.0.0.1 --dir "$dir/redis" --save '' --appendonly no \
    >"$dir/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.02; done
  common=(--model "$model" --store "redis://127.0.0.1:$rport" --seal-key-file "$work/seal.key" --threads 1
          --kv-ram-mb 64 --log-level warning --no-access-log)
  for i in $(seq 1 "$engines"); do
    port="$(free_port)"
    "$bin" serve --listen "127.0.0.1:$port" --data-dir "$dir/engine-$i" --role engine "${common[@]}" \
      2>"$dir/engine-$i.log" &
    pids+=($!)
    wait_http "$port"
  done
  api_port="$(free_port)"
  "$bin" serve --listen "127.0.0.1:$api_port" --data-dir "$dir/api" --role api --dispatch "$mode" \
    "${common[@]}" 2>"$dir/api.log" &
  pids+=($!)
  wait_http "$api_port"
  "$bin" bench trace --native-url "http://127.0.0.1:$api_port" --sessions 7 --turns 8 --message-tokens 64 \
    --generate 16 --seed 1 "$@" --out "$out/dispatch-$mode.json" >/dev/null
  stop_all
  echo "$mode: computed/new after turn 0 = $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['targets']['native']['totals']['computed_over_new_after_turn_0'])" "$out/dispatch-$mode.json")"
done
python3 "$here/plot_dispatch.py" "$out/dispatch-round_robin.json" "$out/dispatch-cache_aware.json" \
  "$out/dispatch.svg" "$engines"
