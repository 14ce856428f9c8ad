#!/usr/bin/env python3
"""SSE delivery across processes: subscribers on an api process, the run on an engine process.

Starts redis-server (appendonly yes, appendfsync always) on a free loopback port and one
`llmsync serve --role api` process. A seeded run is created through the api process while no
engine exists, so it waits; N subscribers then open GET /v1/runs/{id}/events on the api process,
and only then an `--role engine` process starts and claims the run. Every token therefore travels
engine -> Redis stream -> api process (XREAD) -> subscriber.

Latency of one delivery = the subscriber's wall-clock receipt - the event's commit time, which the
store stamps into the Redis stream entry (field `c`, ms). Prints one JSON object.

  scripts/bench_sse_processes.py --llmsync build/bin/llmsync [--subscribers 100] [--tokens 200]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_takeover import Serve, free_port, request, run_events  # noqa: E402  (same process helpers)


def subscribe(port, run, ready, out):
    """Follows the run's SSE stream; appends (event id, wall-clock ms) per token event to out."""
    for ev_id, ev_type in run_events(port, run, timeout=300, opened=ready.release):
        if ev_type == "token":
            out.append((ev_id, time.time() * 1000))


def commit_times(redis_cli, rport, run):
    """Event id -> commit ms, from the run's Redis stream."""
    raw = subprocess.run([redis_cli, "-p", str(rport), "--raw", "XRANGE", f"llmsync:events:{run}", "-", "+"],
                         check=True, capture_output=True, text=True).stdout.split("\n")
    times, i = {}, 0
    while i < len(raw):
        entry = raw[i].strip()
        if entry.endswith("-0"):
            fields = {}
            j = i + 1
            while j + 1 < len(raw) and not raw[j].strip().endswith("-0"):
                fields[raw[j].strip()] = raw[j + 1]
                j += 2
            if fields.get("t") == "token":
                times[int(entry[:-2])] = int(fields["c"])
            i = j
        else:
            i += 1
    return times


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--llmsync", required=True)
    p.add_argument("--redis-server", default="/usr/bin/redis-server")
    p.add_argument("--redis-cli", default="/usr/bin/redis-cli")
    p.add_argument("--subscribers", type=int, default=100)
    p.add_argument("--tokens", type=int, default=200)
    p.add_argument("--model", default="", help="GGUF model (default: the demo model)")
    args = p.parse_args()
    args.lease_ms = 3000  # read by Serve
    work = tempfile.mkdtemp(prefix="llmsync_sse_processes_")
    rport = free_port()
    redis = subprocess.Popen([args.redis_server, "--port", str(rport), "--bind", "127.0.0.1", "--dir", work,
                              "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                             stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    key_file = os.path.join(work, "seal.key")
    with open(key_file, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    url = f"redis://127.0.0.1:{rport}"
    procs = []
    try:
        api = Serve(args, work, "api", "api", url, key_file, args.model)
        api.start()
        procs.append(api)
        model = args.model or os.path.join(work, "api", "demo-model.gguf")
        _, session = request(api.port, "POST", "/v1/sessions", {})
        request(api.port, "POST", f"/v1/sessions/{session['id']}/nodes",
                {"nodes": [{"kind": "user", "text": "Tell me a story."}]})
        _, run = request(api.port, "POST", f"/v1/sessions/{session['id']}/runs",
                         {"max_tokens": args.tokens, "temperature": 0.9, "seed": 7})
        run = run["id"]
        ready = threading.Semaphore(0)
        receipts = [[] for _ in range(args.subscribers)]
        threads = [threading.Thread(target=subscribe, args=(api.port, run, ready, receipts[i]))
                   for i in range(args.subscribers)]
        for t in threads:
            t.start()
        for _ in threads:
            ready.acquire()
        engine = Serve(args, work, "engine", "engine", url, key_file, model)
        started = time.monotonic()
        engine.start()
        procs.append(engine)
        for t in threads:
            t.join()
        wall_s = time.monotonic() - started
        committed = commit_times(args.redis_cli, rport, run)
        latency = [at - committed[i] for sub in receipts for i, at in sub if i in committed]
        complete = sum(1 for sub in receipts if sorted(i for i, _ in sub) == sorted(committed))
        print(json.dumps({
            "benchmark": "sse_processes", "subscribers": args.subscribers, "token_events": len(committed),
            "deliveries": len(latency), "subscribers_with_every_token": complete,
            "latency_definition": "subscriber receipt on the api process - commit on the engine (Redis stream entry), ms",
            "latency_ms": {"p50": round(percentile(latency, 50), 1), "p99": round(percentile(latency, 99), 1),
                           "max": round(max(latency), 1), "mean": round(statistics.mean(latency), 1)},
            "wall_s_from_engine_start": round(wall_s, 2),
        }))
    finally:
        for pr in procs:
            pr.kill(signal.SIGTERM)
        redis.kill()
        redis.wait()


if __name__ == "__main__":
    main()
