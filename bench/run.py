"""Benchmark: requests/s and p50/p99 latency, direct to a mock upstream and through the gateway.

Runs, in one go: the mock upstream alone, the gateway on the embedded default (SQLite,
in-process holds) and on PostgreSQL + Redis; each at 1 and 32 connections, non-streaming and
streaming. The gateway is pinned to CPU 0; the mock and the load driver (wrk) share CPU 1, and so do
PostgreSQL, Redis and (cluster shape) the separate `gatewayz projector` process.
Every gateway request is durably recorded (hold placed and settled) before it is answered
(streams settle as they close). Prints a table and the gateway's peak RSS.

    python bench/run.py [--duration 5] [--only embedded|cluster|direct]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = "bench/mock-model"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in five words."}],
        "max_tokens": 16}
BENCH_LIMITS = {name: 10**9 for name in (
    "requests_per_minute", "requests_per_hour", "requests_per_day", "tokens_per_minute",
    "tokens_per_hour", "tokens_per_day", "burst", "concurrency")}
PG_URL = os.environ.get("GATEWAYZ_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GATEWAYZ_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def call(url: str, token: str, method: str, payload: dict) -> dict:
    request = urllib.request.Request(url, method=method, data=json.dumps(payload).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json",
                                              "Idempotency-Key": uuid.uuid4().hex})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def lua_script(directory: Path, key: str, stream: bool) -> Path:
    body = dict(BODY, stream=True, stream_options={"include_usage": True}) if stream else BODY
    path = directory / f"post_{'stream' if stream else 'json'}.lua"
    path.write_text(
        'wrk.method = "POST"\nwrk.path = "/v1/chat/completions"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        f"wrk.body = '{json.dumps(body)}'\n"
        "function response(status, headers, body)\n"
        '  if status ~= 200 then io.stderr:write("status " .. status .. "\\n") end\nend\n')
    return path


def parse_latency(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, script: Path, connections: int, duration: int) -> dict:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
         "-s", str(script), url], capture_output=True, text=True, check=True)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = parse_latency(re.search(r"\s50%\s+(\S+)", text).group(1))
    p99 = parse_latency(re.search(r"\s99%\s+(\S+)", text).group(1))
    errors = len([line for line in out.stderr.splitlines() if line.startswith("status")])
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99,
            "errors": errors + (int(non2xx.group(1)) if non2xx else 0)}


class Gateway:
    def __init__(self, name: str, mock_port: int, env: dict[str, str],
                 separate_projector: bool = False) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"gatewayz-bench-{name}-"))
        self.port = free_port()
        self.env = {**os.environ, **env}
        token = subprocess.run([str(BIN / "gatewayz"), "admin", "bootstrap", "--data-dir",
                                str(self.dir)], env=self.env, capture_output=True, text=True,
                               check=True).stdout.strip()
        self.projector = None
        if separate_projector:
            # Cluster shape (design §4): projections in their own process, off the
            # request-serving core.
            self.projector = subprocess.Popen(
                ["taskset", "-c", "1", str(BIN / "gatewayz"), "projector", "--data-dir",
                 str(self.dir)], env=self.env, stdout=subprocess.DEVNULL)
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", str(BIN / "gatewayz"), "serve", "--data-dir", str(self.dir),
             "--port", str(self.port)] + (["--no-projector"] if separate_projector else []),
            env=self.env, stdout=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(self.url + "/health")
        call(self.url + "/admin/providers", token, "POST",
             {"slug": "mock", "base_url": f"http://127.0.0.1:{mock_port}/v1",
              "allow_private": True, "credential": "sk-mock"})
        call(self.url + f"/admin/models/{MODEL}/prices", token, "PUT",
             {"provider": "mock", "prices": {"input": "0.01", "output": "0.01"},
              "context_length": 128000})
        account = call(self.url + "/admin/accounts", token, "POST",
                       {"email": "bench@example.com", "plan": "dev"})["id"]
        call(self.url + "/admin/credits/grants", token, "POST",
             {"account_id": account, "amount_micros": 1_000_000_000,
              "reason": "benchmark credit"})
        # Limits an admin raised far above the plan's (1.10): the load is the point here;
        # the limiter still runs on every request (its cost is part of what is measured).
        self.key = call(self.url + f"/admin/accounts/{account}/keys", token, "POST",
                        {"name": "bench", "rate_limits": BENCH_LIMITS})["key"]

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> None:
        if self.projector is not None:
            self.projector.send_signal(signal.SIGINT)
            self.projector.wait(timeout=15)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def create_schema(schema: str, drop: bool = False) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE' if drop
                     else f'CREATE SCHEMA "{schema}"')


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--only", choices=("direct", "embedded", "cluster"))
    parser.add_argument("--cluster-projector", choices=("separate", "inside"),
                        default="separate",
                        help="cluster shape: projector as its own process (default) or "
                             "inside `serve`")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install -y wrk", file=sys.stderr)
        return 2
    mock_port = free_port()
    mock = subprocess.Popen(["taskset", "-c", "1", sys.executable,
                             str(ROOT / "bench" / "mock_upstream.py"), "--port", str(mock_port)],
                            stdout=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{mock_port}/v1/models")
    scripts = Path(tempfile.mkdtemp(prefix="gatewayz-bench-lua-"))
    rows: list[tuple[str, int, str, dict]] = []
    rss: dict[str, float] = {}

    def measure(target: str, url: str, key: str) -> None:
        for stream in (False, True):
            script = lua_script(scripts, key, stream)
            wrk(url, script, 8, 1)  # warm-up: connections, caches, JIT-free but pools
            for connections in (1, 32):
                result = wrk(url, script, connections, args.duration)
                rows.append((target, connections, "stream" if stream else "json", result))

    try:
        if args.only in (None, "direct"):
            measure("direct (mock)", f"http://127.0.0.1:{mock_port}", "none")
        if args.only in (None, "embedded"):
            gw = Gateway("embedded", mock_port, {})
            try:
                measure("gateway embedded", gw.url, gw.key)
                rss["gateway embedded"] = gw.peak_rss_mib()
            finally:
                gw.stop()
        if args.only in (None, "cluster"):
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            create_schema(schema)
            gw = Gateway("cluster", mock_port, {
                "DATABASE_URL": PG_URL, "GATEWAYZ_DB_SCHEMA": schema, "REDIS_URL": REDIS_URL,
                "GATEWAYZ_KEY_PEPPER": "bench-pepper-of-at-least-thirty-two-bytes",
                "GATEWAYZ_MASTER_KEY": "00" * 32},
                separate_projector=args.cluster_projector == "separate")
            try:
                label = "gateway pg+redis" + (" (1 proc)" if args.cluster_projector == "inside"
                                              else "")
                measure(label, gw.url, gw.key)
                rss[label] = gw.peak_rss_mib()
            finally:
                gw.stop()
                create_schema(schema, drop=True)
    finally:
        mock.terminate()
        mock.wait(timeout=10)
        shutil.rmtree(scripts, ignore_errors=True)

    print(f"\n{'target':28} {'conns':>5} {'mode':6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
          f" {'errors':>6}")
    for target, connections, mode, r in rows:
        print(f"{target:28} {connections:>5} {mode:6} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} {r['errors']:>6}")
    direct = {(c, m): r for t, c, m, r in rows if t.startswith("direct")}
    for target, connections, mode, r in rows:
        if connections == 1 and not target.startswith("direct") and (1, mode) in direct:
            added = r["p50_ms"] - direct[(1, mode)]["p50_ms"]
            print(f"added p50 at 1 connection, {target}, {mode}: {added:.2f} ms")
    for target, mib in rss.items():
        print(f"peak RSS {target}: {mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
