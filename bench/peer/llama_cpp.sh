#!/usr/bin/env bash
# llmsync's engine side by side with llama.cpp on the same GGUF files (docs/PERFORMANCE.md, Engine).
#
#   bench/peer/llama_cpp.sh [--llama-dir DIR] [options]
#
# llama.cpp comes from a local checkout the developer fetched once (--llama-dir or $LLAMA_CPP_DIR);
# this script never downloads it. It builds llama-bench there (cmake, Release, GGML_NATIVE) into
# --llama-build (default DIR/build) when that has no bin/llama-bench, makes llmsync's 1B-shaped test
# models (or takes --model FILE ...), then runs llama-bench and `llmsync bench engine` interleaved:
# every round runs each (type, threads) cell on both sides back to back, alternating which side goes
# first from round to round, so slow drift on a shared machine hits both alike. Both sides see the
# same file, prompt length (pp) and decode length (tg, from an empty context as llama-bench times
# it), F16 KV cache, the same thread count and the same number of repetitions per run.
#
# Output: one JSON line per run (side, file, type, threads, round, tokens/s, the 1-minute load
# average before and after the run, llama.cpp commit, llmsync commit), then a table of ratios of
# medians (llmsync / llama.cpp, above 1 means llmsync is faster). A run's load is the mean of its
# before and after figures (the 1-minute average lags the run); a cell whose two sides' median
# loads differ by more than --max-load-diff gets no ratio, and the line says why.
#
# Options:
#   --llama-dir DIR       llama.cpp checkout (default $LLAMA_CPP_DIR)
#   --llama-build DIR     its build directory (default DIR/build)
#   --llmsync BIN         llmsync binary (default build/bin/llmsync of this checkout)
#   --models-dir DIR      where generated models go (default $LLMSYNC_PEER_MODELS or
#                         ${XDG_CACHE_HOME:-~/.cache}/llmsync/peer-models); they carry the
#                         llama-spm vocabulary of ${LLMSYNC_SHARED_DIR:-../shared}, else 32000 byte tokens
#   --types "T ..."       make-test types (default "q8_0 q4_k_m q4_0"; also q4_k, q6_k, f16)
#   --model FILE          benchmark this file instead of generated ones (repeatable)
#   --shape 1b|small      1b: the Llama-3.2-1B shape (default); small: n_embd 512, 4 layers (smoke)
#   --threads "N ..."     thread counts (default "1 2")
#   --rounds N            interleaved rounds (default 3, at least 3 for a table)
#   --reps N              repetitions inside each run (llama-bench -r, bench engine --repetitions; 2)
#   --prompt N --gen N    prefill and decode lengths (default 128 and 32)
#   --max-load-diff X     largest difference of the sides' median loads for a ratio (default 1.0)
#   --out FILE            also write the JSON lines to FILE
set -euo pipefail

here="$(cd "$(dirname "$0")/../.." && pwd)"
llama_dir="${LLAMA_CPP_DIR:-}"
llama_build=""
llmsync="$here/build/bin/llmsync"
models_dir="${LLMSYNC_PEER_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/llmsync/peer-models}"
types="q8_0 q4_k_m q4_0"
models=()
shape="1b"
threads_list="1 2"
rounds=3
reps=2
prompt=128
gen=32
max_load_diff=1.0
out=""
python=/usr/bin/python3

die() { echo "llama_cpp.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --llama-dir) llama_dir="$2"; shift 2 ;;
    --llama-build) llama_build="$2"; shift 2 ;;
    --llmsync) llmsync="$2"; shift 2 ;;
    --models-dir) models_dir="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    --model) models+=("$2"); shift 2 ;;
    --shape) shape="$2"; shift 2 ;;
    --threads) threads_list="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --prompt) prompt="$2"; shift 2 ;;
    --gen) gen="$2"; shift 2 ;;
    --max-load-diff) max_load_diff="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (--help lists them)" ;;
  esac
done

[[ -n "$llama_dir" ]] || die "give the llama.cpp checkout: --llama-dir DIR or LLAMA_CPP_DIR (fetch it once yourself)"
[[ -f "$llama_dir/CMakeLists.txt" ]] || die "$llama_dir is not a llama.cpp checkout (no CMakeLists.txt)"
llama_dir="$(cd "$llama_dir" && pwd)"
case "$llama_dir/" in "$here"/*) die "the llama.cpp checkout must live outside this repository" ;; esac
llama_build="${llama_build:-$llama_dir/build}"
case "$(mkdir -p "$llama_build" && cd "$llama_build" && pwd)/" in
  "$here"/*) die "the llama.cpp build directory must live outside this repository" ;;
esac
[[ -x "$llmsync" ]] || die "no llmsync binary at $llmsync (scripts/build.sh build, or --llmsync BIN)"
[[ "$rounds" -ge 1 && "$reps" -ge 1 ]] || die "--rounds and --reps must be positive"
[[ -x "$python" ]] || die "$python is needed to read the JSON"

# 1. llama-bench, built once.
bench_bin="$llama_build/bin/llama-bench"
if [[ ! -x "$bench_bin" ]]; then
  echo "building llama.cpp in $llama_build (Release, GGML_NATIVE)..." >&2
  cmake -S "$llama_dir" -B "$llama_build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF >&2
  cmake --build "$llama_build" --target llama-bench -j "$(nproc)" >&2
fi
llama_commit="$(git -C "$llama_dir" rev-parse --short=9 HEAD 2>/dev/null || echo unknown)"
llama_describe="$(git -C "$llama_dir" describe --tags --always 2>/dev/null || echo unknown)"
llmsync_commit="$(git -C "$here" rev-parse --short=9 HEAD 2>/dev/null || echo unknown)"

# 2. The models: llmsync's make-test files, the same bytes for both sides.
if [[ ${#models[@]} -eq 0 ]]; then
  mkdir -p "$models_dir"
  case "$shape" in
    1b) dims="--n-embd 2048 --n-layer 16 --n-head 32 --n-head-kv 8 --n-ff 8192" ;;
    small) dims="--n-embd 512 --n-layer 4 --n-head 8 --n-head-kv 4 --n-ff 1536" ;;
    *) die "--shape is 1b or small" ;;
  esac
  vocab="${LLMSYNC_SHARED_DIR:-$here/../shared}/vectors/tokenizer/ggml-vocab-llama-spm.gguf"
  if [[ -f "$vocab" ]]; then vocab_args="--vocab $vocab"; else vocab_args="--vocab-size 32000"; fi
  for t in $types; do
    f="$models_dir/$shape-$t.gguf"
    if [[ ! -f "$f" ]]; then
      echo "making $f..." >&2
      # shellcheck disable=SC2086
      "$llmsync" model make-test --arch llama $vocab_args $dims --type "$t" --seed 1 --out "$f" >&2
    fi
    models+=("$f")
  done
fi

load1() { cut -d' ' -f1 /proc/loadavg; }
emit() {
  echo "$1"
  if [[ -n "$out" ]]; then echo "$1" >>"$out"; fi
}
[[ -z "$out" ]] || : >"$out"
runs_file="$(mktemp)"
trap 'rm -f "$runs_file"' EXIT

# One run of one side; prints its JSON line (and keeps it for the table).
run_side() {  # side model threads round
  local side="$1" model="$2" threads="$3" round="$4" load raw line
  load="$(load1)"
  if [[ "$side" == "llama.cpp" ]]; then
    raw="$("$bench_bin" -m "$model" -p "$prompt" -n "$gen" -t "$threads" -r "$reps" -o jsonl 2>/dev/null)" ||
      die "llama-bench failed on $model"
  else
    raw="$("$llmsync" bench engine --model "$model" --threads "$threads" --prompt "$prompt" --gen "$gen" \
      --repetitions "$reps" --decode-from empty)" || die "llmsync bench engine failed on $model"
  fi
  line="$(RAW="$raw" "$python" - "$side" "$model" "$threads" "$round" "$load" "$(load1)" "$llama_commit" \
    "$llama_describe" "$llmsync_commit" <<'PY'
import json, os, sys
side, model, threads, rnd, load, load_after, lcommit, ldescribe, mcommit = sys.argv[1:10]
rows = [json.loads(l) for l in os.environ["RAW"].splitlines() if l.strip().startswith("{")]
rec = {"benchmark": "peer_llama_cpp", "side": side, "model": os.path.basename(model),
       "threads": int(threads), "round": int(rnd), "load_avg_1m_before": float(load),
       "load_avg_1m_after": float(load_after),
       "llama_cpp_commit": lcommit, "llama_cpp_version": ldescribe, "llmsync_commit": mcommit}
if side == "llama.cpp":
    for r in rows:
        if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0:
            rec["prompt_tokens"], rec["prefill_tok_s"] = r["n_prompt"], round(r["avg_ts"], 2)
            rec["prefill_tok_s_all"] = [round(x, 2) for x in r.get("samples_ts", [])]
        elif r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0:
            rec["gen_tokens"], rec["decode_tok_s"] = r["n_gen"], round(r["avg_ts"], 2)
            rec["decode_tok_s_all"] = [round(x, 2) for x in r.get("samples_ts", [])]
    if rows:
        rec["weights"] = rows[0].get("model_type", "")
        rec["cpu"] = rows[0].get("cpu_info", "")
        rec["llama_cpp_build_commit"] = rows[0].get("build_commit", "")
else:
    r = rows[-1]
    for k in ("prompt_tokens", "gen_tokens", "prefill_tok_s", "decode_tok_s", "prefill_tok_s_all",
              "decode_tok_s_all", "weights", "isa", "rss_after_load_mib", "rss_peak_mib",
              "rss_file_mib", "rss_anon_mib", "file_mib", "kv_mib"):
        rec[k] = r.get(k)
print(json.dumps(rec))
PY
)"
  emit "$line"
  echo "$line" >>"$runs_file"
}

echo "llama.cpp $llama_describe ($llama_commit) at $llama_dir; llmsync $llmsync_commit; $(nproc) CPUs;" \
  "pp $prompt, tg $gen, $reps reps per run, $rounds rounds, threads: $threads_list" >&2
for ((round = 1; round <= rounds; round++)); do
  for threads in $threads_list; do
    for model in "${models[@]}"; do
      if ((round % 2 == 1)); then
        run_side llama.cpp "$model" "$threads" "$round"
        run_side llmsync "$model" "$threads" "$round"
      else
        run_side llmsync "$model" "$threads" "$round"
        run_side llama.cpp "$model" "$threads" "$round"
      fi
    done
  done
done

# 3. Ratios of medians, per (file, threads), unless the loads differ too much.
"$python" - "$runs_file" "$max_load_diff" "$rounds" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
max_diff, rounds = float(sys.argv[2]), int(sys.argv[3])
cells = {}
for r in runs:
    cells.setdefault((r["model"], r["threads"]), {}).setdefault(r["side"], []).append(r)
def med(rs, key):
    v = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(v) if v else None
# The load a run ran under: the 1-minute average lags, so take the mean of before and after.
for r in runs:
    r["load"] = (r["load_avg_1m_before"] + r.get("load_avg_1m_after", r["load_avg_1m_before"])) / 2
print()
print(f"| file | threads | llama.cpp pp tok/s | llmsync pp tok/s | prefill ratio | llama.cpp tg tok/s "
      f"| llmsync tg tok/s | decode ratio | load (llama.cpp / llmsync) |")
print("|---|---|---|---|---|---|---|---|---|")
notes = []
for (model, threads), sides in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    a, b = sides.get("llama.cpp", []), sides.get("llmsync", [])
    la, lb = med(a, "load"), med(b, "load")
    lo = min(r["load"] for r in a + b)
    hi = max(r["load"] for r in a + b)
    load = f"{la:.2f} / {lb:.2f} (range {lo:.2f}-{hi:.2f})"
    vals = [med(a, "prefill_tok_s"), med(b, "prefill_tok_s"), med(a, "decode_tok_s"), med(b, "decode_tok_s")]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    why = None
    if len(a) < 3 or len(b) < 3:
        why = f"fewer than 3 runs per side ({len(a)} / {len(b)})"
    elif abs(la - lb) > max_diff:
        why = f"median loads differ by {abs(la - lb):.2f} > {max_diff}"
    elif None in vals or 0 in vals:
        why = "a side reported no rate"
    if why:
        pr = dr = "n/a"
        notes.append(f"{model}, {threads} threads: no ratio: {why}")
    else:
        pr, dr = f"{vals[1] / vals[0]:.2f}x", f"{vals[3] / vals[2]:.2f}x"
    print(f"| {model} | {threads} | {fmt(vals[0])} | {fmt(vals[1])} | {pr} | {fmt(vals[2])} | {fmt(vals[3])} "
          f"| {dr} | {load} |")
for n in notes:
    print(n)
PY
