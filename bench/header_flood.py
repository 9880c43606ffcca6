"""Header flood against a real `gatewayz serve`: server RSS and the statuses it answers.

Starts `gatewayz serve` on a scratch data directory, times GET /health at one connection
(httpx, keep-alive), then opens N connections at once, each sending one request whose head
carries a huge header (one value of --megabytes MB) or very many small headers (--count),
and reads the server's answer. RSS of the server process is read from /proc while the flood
runs (peak sampled every 5 ms, and the kernel's high-water mark VmHWM).

    python bench/header_flood.py [--connections 8] [--megabytes 40] [--count 20000]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
CHUNK = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(data_dir: str, port: int) -> subprocess.Popen:
    server = subprocess.Popen([str(BIN / "gatewayz"), "serve", "--port", str(port),
                               "--data-dir", data_dir],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("gatewayz serve did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (less noisy than latency on a shared machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def health_p50(pid: int, port: int, requests: int) -> tuple[float, float]:
    """Median ms of GET /health over one keep-alive connection, and server CPU us each."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(200):  # warm-up
            client.get("/health")
        times = []
        cpu = cpu_seconds(pid)
        for _ in range(requests):
            start = time.perf_counter()
            client.get("/health")
            times.append((time.perf_counter() - start) * 1000)
        cpu = cpu_seconds(pid) - cpu
    return statistics.median(times), cpu / requests * 1e6


def flood_one(port: int, megabytes: int, count: int, results: list, index: int) -> None:
    """One connection: send the whole oversized head, then read whatever the server answers."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(60)
    error = ""
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\n")
        if count:
            sock.sendall(b"".join(b"X-H%d: v\r\n" % i for i in range(count)))
        else:
            sock.sendall(b"X-Flood: ")
            block = b"a" * CHUNK
            for _ in range(megabytes):
                sock.sendall(block)
            sock.sendall(b"\r\n")
        sock.sendall(b"\r\n")
    except OSError as exc:  # the server may stop reading once it has refused the head
        error = f" (send: {type(exc).__name__})"
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError as exc:
        error += f" (recv: {type(exc).__name__})"
    sock.close()
    status = answer.split(b"\r\n", 1)[0].decode("latin-1") if answer else "no answer"
    results[index] = status + error


def flood(pid: int, port: int, connections: int, megabytes: int, count: int) -> None:
    results: list[str] = [""] * connections
    peak = [proc_mib(pid, "VmRSS")]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc_mib(pid, "VmRSS"))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=flood_one, args=(port, megabytes, count, results, i))
               for i in range(connections)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    time.sleep(0.5)
    done.set()
    sampler.join()
    what = f"{count} headers" if count else f"a {megabytes} MB header value"
    print(f"flood: {connections} connections x {what}, {elapsed:.2f} s")
    for status in sorted(set(results)):
        print(f"  {results.count(status)} x {status}")
    print(f"  RSS peak {peak[0]:.0f} MiB (VmHWM {proc_mib(pid, 'VmHWM'):.0f} MiB), "
          f"after {proc_mib(pid, 'VmRSS'):.0f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--megabytes", type=int, default=40)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        server = start_server(data_dir, port)
        try:
            p50, cpu_us = health_p50(server.pid, port, args.requests)
            print(f"GET /health at 1 connection ({args.requests} requests): p50 {p50:.3f} ms, "
                  f"server CPU (all threads) {cpu_us:.0f} us per request")
            print(f"RSS before: {proc_mib(server.pid, 'VmRSS'):.0f} MiB")
            flood(server.pid, port, args.connections, args.megabytes, 0)
            flood(server.pid, port, args.connections, 0, args.count)
            alive = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code
            print(f"GET /health after the floods: {alive}")
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
