#!/usr/bin/env python3
"""Takeover time after an engine SIGKILL, with many `llmsync serve` processes on one Redis.

Starts redis-server (appendonly yes, appendfsync always) on a free loopback port, one api process
and two engine processes. Each round starts a long seeded run through the api process, follows its
events there, SIGKILLs the engine that claimed it once tokens flow, and measures from the kill
  - claim_ms: until GET /v1/runs/{id} names the other engine, and
  - resume_ms: until the subscriber receives the first token the other engine generated.
The killed engine is restarted for the next round. Prints one JSON object.

  scripts/bench_takeover.py --llmsync build/bin/llmsync [--kills 20] [--lease-ms 3000]
"""
import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else None


def wait_healthy(port, proc, what):
    for _ in range(1000):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    sys.exit(f"{what} did not come up")


class Serve:
    def __init__(self, args, work, name, role, redis_url, key_file, model):
        self.args, self.work, self.name, self.role = args, work, name, role
        self.redis_url, self.key_file, self.model = redis_url, key_file, model
        self.proc = None
        self.port = None

    def start(self):
        self.port = free_port()
        cmd = [self.args.llmsync, "serve", "--listen", f"127.0.0.1:{self.port}",
               "--data-dir", os.path.join(self.work, self.name), "--store", self.redis_url,
               "--role", self.role, "--seal-key-file", self.key_file,
               "--run-lease-ms", str(self.args.lease_ms), "--threads", "1", "--kv-ram-mb", "64"]
        if self.model:
            cmd += ["--model", self.model]
        log = open(os.path.join(self.work, self.name + ".log"), "a")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        wait_healthy(self.port, self.proc, self.name)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait()


def run_events(port, run, timeout=120, opened=None):
    """Yields (event id, type) from the run's SSE stream up to its terminal event; calls opened()
    once the stream has answered."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", f"/v1/runs/{run}/events")
    r = c.getresponse()
    if opened:
        opened()
    ev_id, ev_type = None, None
    try:
        while True:
            line = r.readline()
            if not line:
                break
            line = line.decode().rstrip("\n")
            if line.startswith("id:"):
                ev_id = int(line[3:].strip())
            elif line.startswith("event:"):
                ev_type = line[6:].strip()
            elif line == "" and ev_type is not None:
                yield ev_id, ev_type
                if ev_type in ("run.completed", "run.failed", "run.cancelled"):
                    break
                ev_id, ev_type = None, None
    finally:
        c.close()


def follow(port, run, out):
    """Reads the run's SSE stream, appending (arrival time, event id, type) to out."""
    for ev_id, ev_type in run_events(port, run):
        out.append((time.monotonic(), ev_id, ev_type))


def one_round(api, engines, args):
    _, session = request(api.port, "POST", "/v1/sessions", {})
    request(api.port, "POST", f"/v1/sessions/{session['id']}/nodes",
            {"nodes": [{"kind": "user", "text": "Write a long story."}]})
    _, run = request(api.port, "POST", f"/v1/sessions/{session['id']}/runs",
                     {"max_tokens": args.max_tokens, "temperature": 0.9, "seed": 1234})
    run = run["id"]
    events = []
    t = threading.Thread(target=follow, args=(api.port, run, events))
    t.start()
    while sum(1 for e in events if e[2] == "token") < 10:
        time.sleep(0.002)
    _, record = request(api.port, "GET", f"/v1/runs/{run}")
    pid = int(record["worker"].rsplit(":", 1)[1])
    victim = next(e for e in engines if e.proc.pid == pid)
    killed_at = time.monotonic()
    victim.kill()
    last_before = max(e[1] for e in events)
    claim_ms = None
    while claim_ms is None:
        _, record = request(api.port, "GET", f"/v1/runs/{run}")
        if record["worker"] and int(record["worker"].rsplit(":", 1)[1]) != pid:
            claim_ms = (time.monotonic() - killed_at) * 1000
        else:
            time.sleep(0.005)
    t.join()
    ids = [e[1] for e in events]
    if ids != list(range(1, len(ids) + 1)):
        sys.exit(f"run {run}: event ids are not contiguous across the takeover")
    # The first event the survivor wrote: the first id past the last one durable at the kill.
    # (Events already durable but delivered just after the kill are not the survivor's.)
    resumed = [e for e in events if e[1] > last_before and e[0] > killed_at]
    resume_ms = (resumed[0][0] - killed_at) * 1000 if resumed else None
    victim.start()
    return claim_ms, resume_ms


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--llmsync", required=True)
    p.add_argument("--redis-server", default="/usr/bin/redis-server")
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--lease-ms", type=int, default=3000)
    p.add_argument("--max-tokens", type=int, default=3000)
    p.add_argument("--model", default="", help="GGUF model (default: the demo model)")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="llmsync_takeover_")
    rport = free_port()
    redis = subprocess.Popen([args.redis_server, "--port", str(rport), "--bind", "127.0.0.1", "--dir", work,
                              "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                             stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    key_file = os.path.join(work, "seal.key")
    with open(key_file, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    url = f"redis://127.0.0.1:{rport}"
    model = args.model
    procs = []
    try:
        api = Serve(args, work, "api", "api", url, key_file, model)
        api.start()
        procs.append(api)
        if not model:  # the api process generated the demo model: share it
            model = os.path.join(work, "api", "demo-model.gguf")
        engines = [Serve(args, work, f"engine-{i}", "engine", url, key_file, model) for i in range(2)]
        for e in engines:
            e.start()
            procs.append(e)
        claims, resumes = [], []
        for _ in range(args.kills):
            c, r = one_round(api, engines, args)
            claims.append(c)
            if r is not None:
                resumes.append(r)
        print(json.dumps({
            "benchmark": "takeover", "kills": args.kills, "run_lease_ms": args.lease_ms,
            "claim_ms": {"median": round(statistics.median(claims)), "max": round(max(claims))},
            "resume_ms": {"median": round(statistics.median(resumes)), "max": round(max(resumes)),
                          "rounds": len(resumes)},
        }))
    finally:
        for pr in procs:
            pr.kill(signal.SIGTERM)
        redis.kill()
        redis.wait()


if __name__ == "__main__":
    main()
