"""Rate limits across processes (issue 9's proof): two `gatewayz serve` workers on one
PostgreSQL and their own Redis; 64 tasks send to one key at 10x its rate; then that Redis is
killed mid-run and brought back.

Prints, for the shared phase, admitted requests against the bound burst + rate x t (and the
95% floor); for the outage phase, the 5xx count (must be 0), what `/health` says about the
in-process fallback on each worker while Redis is down, and how long after Redis is back
until both workers say they are on Redis again (must be <= 2 s).

    python bench/rate_limit_cluster.py [--seconds 10] [--rate 600] [--burst 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import free_port, wait_http  # noqa: E402

BIN = Path(sys.executable).parent
PG = "postgresql://postgres@127.0.0.1:5432"


def start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis did not start")


def fallback(url: str) -> bool:
    return httpx.get(url + "/health", timeout=5).json()["rate_limiter"]["fallback_active"]


async def hammer(urls: list[str], key: str, seconds: float, tasks: int,
                 per_task_rps: float) -> dict[int, int]:
    counts: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=10) as client:
        async def one(i: int) -> None:
            url = urls[i % len(urls)] + "/v1/account/balance"
            while time.monotonic() < deadline:
                start = time.monotonic()
                try:
                    answer = await client.get(url, headers={"Authorization": f"Bearer {key}"})
                    counts[answer.status_code] = counts.get(answer.status_code, 0) + 1
                except httpx.HTTPError:
                    counts[0] = counts.get(0, 0) + 1
                await asyncio.sleep(max(0.0, 1 / per_task_rps - (time.monotonic() - start)))

        await asyncio.gather(*(one(i) for i in range(tasks)))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=int, default=600, help="requests per minute")
    parser.add_argument("--burst", type=int, default=50)
    args = parser.parse_args()
    redis_port, db = free_port(), f"gwz_rl_{os.getpid()}"
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
                    f"create database {db}"], check=True)
    redis = start_redis(redis_port)
    work = Path(tempfile.mkdtemp(prefix="gwz-rl-"))
    env = {**os.environ, "DATABASE_URL": f"{PG}/{db}",
           "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "GATEWAYZ_KEY_PEPPER": "rate-limit-bench-pepper-0123456789abcdef",
           "GATEWAYZ_MASTER_KEY": "ab" * 32, "GATEWAYZ_WORKERS": "2"}
    workers: list[subprocess.Popen] = []
    try:
        token = subprocess.run([str(BIN / "gatewayz"), "admin", "bootstrap", "--data-dir",
                                str(work / "a")], env=env, capture_output=True, text=True,
                               check=True).stdout.split("gw_staff_")[1].split()[0]
        token = "gw_staff_" + token
        urls = []
        for name, extra in (("a", []), ("b", ["--no-projector"])):
            port = free_port()
            workers.append(subprocess.Popen(
                [str(BIN / "gatewayz"), "serve", "--port", str(port), "--data-dir",
                 str(work / name), *extra], env=env, stdout=subprocess.DEVNULL,
                stderr=(work / f"{name}.log").open("w")))
            urls.append(f"http://127.0.0.1:{port}")
        for name, url in zip("ab", urls, strict=True):
            try:
                wait_http(url + "/health", timeout=60)
            except RuntimeError:
                print((work / f"{name}.log").read_text()[-3000:], file=sys.stderr)
                raise
        staff = {"Authorization": f"Bearer {token}"}
        account = httpx.post(urls[0] + "/admin/accounts", headers=staff,
                             json={"email": "rl@example.com", "plan": "dev"}).json()["id"]
        key = httpx.post(urls[0] + f"/admin/accounts/{account}/keys", headers=staff, json={
            "name": "rl", "rate_limits": {"requests_per_minute": args.rate,
                                          "burst": args.burst}}).json()["key"]
        time.sleep(1.5)  # the key reaches the second worker's cache

        rate = args.rate / 60
        offered = 10 * rate
        counts = asyncio.run(hammer(urls, key, args.seconds, 64, offered / 64))
        bound = args.burst + rate * args.seconds
        admitted = counts.get(200, 0)
        print(f"shared Redis, 2 workers, 64 tasks at {offered:.0f} req/s for {args.seconds:g} s:")
        print(f"  admitted {admitted}, refused {counts.get(429, 0)}, other {counts}")
        print(f"  bound burst + rate x t = {bound:.0f}; 95% floor {0.95 * bound:.0f}; "
              f"{'OK' if 0.95 * bound <= admitted <= bound else 'OUT OF BOUNDS'}")

        # Outage: kill Redis a third of the way in, bring it back at two thirds.
        async def outage() -> tuple[dict[int, int], list[bool], float]:
            load = asyncio.create_task(hammer(urls, key, args.seconds, 64, offered / 64))
            await asyncio.sleep(args.seconds / 3)
            redis.send_signal(signal.SIGKILL)
            redis.wait()
            await asyncio.sleep(1.0)
            during = [await asyncio.to_thread(fallback, url) for url in urls]
            await asyncio.sleep(args.seconds / 3 - 1.0)
            start_redis(redis_port)
            back = time.monotonic()
            # Each worker polled on its own; a reply counts from when its request was sent
            # (a busy worker may take a while to answer /health itself).
            async def until_back(url: str) -> float:
                while True:
                    asked = time.monotonic()
                    if not await asyncio.to_thread(fallback, url):
                        return asked - back
                    await asyncio.sleep(0.05)

            times = await asyncio.gather(*(until_back(url) for url in urls))
            return await load, during, max(times)

        counts, during, recovered = asyncio.run(outage())
        errors = sum(v for k, v in counts.items() if k >= 500 or k == 0)
        print(f"Redis killed mid-run: statuses {counts}; 5xx or failed: {errors}")
        print(f"  fallback_active while down: {during}; back on Redis after {recovered:.2f} s")
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=30)
        subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"],
                       capture_output=True)
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
                        f"drop database if exists {db}"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
