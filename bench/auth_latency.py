"""Added latency at one connection, this checkout against another (issue 9: authentication
and rate limiting may add at most 0.1 ms p50).

Starts the mock upstream and, alternately, the embedded gateway of each checkout (pinned to
CPU 0; the mock and this driver on CPU 1), and sends sequential non-streaming chat requests
on one keep-alive connection. Prints p50/p99 per round and the median p50 per checkout.
Uses this repository's virtualenv for both; the other checkout's code is put first on
PYTHONPATH, so its own modules are the ones that run.

    python bench/auth_latency.py --before /tmp/before [--requests 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BODY, ROOT, Gateway, free_port, wait_http  # noqa: E402


def latencies(port: int, key: str, count: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps(BODY)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        connection.request("POST", "/v1/chat/completions", body, headers)
        answer = connection.getresponse()
        answer.read()
        samples.append((time.perf_counter() - start) * 1000)
        if answer.status != 200:
            raise RuntimeError(f"status {answer.status}")
    connection.close()
    return samples


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (writer and projector included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def round_of(checkout: Path, mock_port: int, requests: int) -> tuple[float, float, float]:
    """p50 and p99 latency (ms) and the gateway's CPU per request (us): the CPU figure is
    far steadier than latency on a shared machine."""
    gw = Gateway(checkout.name or "this", mock_port, {"PYTHONPATH": str(checkout)})
    try:
        latencies(gw.port, gw.key, 300)  # warm up
        cpu = cpu_seconds(gw.proc.pid)
        samples = sorted(latencies(gw.port, gw.key, requests))
        cpu_us = (cpu_seconds(gw.proc.pid) - cpu) / requests * 1e6
        return statistics.median(samples), samples[int(len(samples) * 0.99)], cpu_us
    finally:
        gw.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    mock_port = free_port()
    mock = subprocess.Popen(["taskset", "-c", "1", sys.executable,
                             str(ROOT / "bench" / "mock_upstream.py"), "--port", str(mock_port)],
                            stdout=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{mock_port}/v1/models")
    results: dict[str, list[float]] = {"before": [], "after": []}
    cpu: dict[str, list[float]] = {"before": [], "after": []}
    try:
        for index in range(args.rounds):
            for name, checkout in (("before", args.before.resolve()), ("after", ROOT)):
                p50, p99, cpu_us = round_of(checkout, mock_port, args.requests)
                results[name].append(p50)
                cpu[name].append(cpu_us)
                print(f"round {index + 1} {name:6} p50 {p50:.3f} ms  p99 {p99:.3f} ms  "
                      f"cpu {cpu_us:.0f} us/request", flush=True)
    finally:
        mock.terminate()
    before, after = (statistics.median(results[k]) for k in ("before", "after"))
    print(f"median p50: before {before:.3f} ms, after {after:.3f} ms, "
          f"added {after - before:+.3f} ms")
    cpu_before, cpu_after = (statistics.median(cpu[k]) for k in ("before", "after"))
    print(f"median CPU per request: before {cpu_before:.0f} us, after {cpu_after:.0f} us, "
          f"added {cpu_after - cpu_before:+.0f} us")


if __name__ == "__main__":
    main()
