"""What authentication and rate limiting add per request (issue 9), measured in process.

Times, per call, the work the /v1 edge and the key guard do for one authenticated request:

- ``auth``: the key check as before this issue (format, cached lookup, status, scope);
- ``+ rules``: plus the IP and referrer allowlist checks (a key with both lists set);
- ``+ limits``: plus layer-2 admission with its concurrency slot, the slot's release (after
  the reply, off the client's latency) and the header merge — on the in-process limiter
  (embedded) and on Redis (cluster). Layer 1 asks nothing for a well-formed key.

    python bench/auth_overhead.py [--n 20000]

Prints p50 and p99 in microseconds. End-to-end figures at 1 connection come from
``bench/run.py`` (see README, Benchmark).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from application.principals import KeyPrincipal
from application.rate_limiting import RateLimiter
from domain.client_address import ip_allowed, referrer_allowed, referrer_host
from domain.key_format import generate_api_key
from domain.rate_limits import profile_for
from entrypoints.bootstrap import Gateway, Settings
from entrypoints.http.limits import _merged

REDIS_URL = "redis://127.0.0.1:6379/0"


def percentiles(samples: list[int]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) / 1000
    p99 = ordered[int(len(ordered) * 0.99)] / 1000
    return f"p50 {p50:7.2f} us   p99 {p99:7.2f} us"


def timed(n: int, step) -> list[int]:
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        step()
        samples.append(time.perf_counter_ns() - start)
    return samples


async def timed_async(n: int, step) -> list[int]:
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await step()
        samples.append(time.perf_counter_ns() - start)
    return samples


async def edge_cost(gw: Gateway, n: int) -> list[int]:
    """What the two ASGI layers this issue added cost around a request that does nothing:
    their time minus the bare app's, per request."""
    from entrypoints.http.intake import intake_middleware
    from entrypoints.http.limits import limits_middleware

    async def bare(scope, receive, send) -> None:
        scope["state"]["authenticated"] = True  # as the key guard leaves it
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    wrapped = intake_middleware(limits_middleware(bare, gw.limiter, gw.security))
    # A well-formed key, as a real client sends: layer 1 then asks the limiter nothing.
    headers = [(b"authorization", b"Bearer " + generate_api_key("live").encode())]

    async def call(app) -> None:
        scope = {"type": "http", "path": "/v1/chat/completions", "method": "POST",
                 "headers": headers, "client": ("127.0.0.1", 5000), "state": {}}

        async def receive():
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message) -> None:
            return None

        await app(scope, receive, send)

    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await call(bare)
        middle = time.perf_counter_ns()
        await call(wrapped)
        samples.append((time.perf_counter_ns() - middle) - (middle - start))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as data:
        gw = Gateway(Settings(data_dir=Path(data)))
        gw.start()
        try:
            account = gw.accounts.open_account("bench@example.com", "dev", "bench")
            issued = gw.access.issue_key(account, "bench", "live", None, None, "bench",
                                         settings={"ip_allowlist": ["127.0.0.0/8"],
                                                   "referrer_allowlist": ["*.example.com"]})
            secret = issued.secret

            def auth() -> KeyPrincipal:
                principal = gw.access.authenticate_key(secret)
                assert principal.allows("inference:use")
                return principal

            def rules() -> None:
                key = auth().key
                assert ip_allowed("127.0.0.1", key.ip_allowlist)
                host = referrer_host("https://app.example.com", None)
                assert referrer_allowed(host, key.referrer_allowlist)

            print(f"auth (before this issue)   {percentiles(timed(n, auth))}")
            print(f"+ rules (IP, referrer)     {percentiles(timed(n, rules))}")
            profile = profile_for("dev", key_limits={"requests_per_minute": 10**9,
                                                     "burst": 10**9},
                                  key_limits_admin_set=True)
            for name, limiter in (("embedded", RateLimiter.embedded()),
                                  ("redis", RateLimiter.with_redis(
                                      REDIS_URL, f"bench-{uuid.uuid4().hex[:8]}"))):
                async def limited(limiter=limiter) -> None:
                    rules()  # a well-formed key skips the layer-1 check (limits.py)
                    verdict = await limiter.admit_key(issued.key_id, profile)
                    _merged([(b"content-type", b"application/json")], verdict.headers)
                    await limiter.release(verdict.lease)
                    limiter.note_status(200)

                async def run(limited=limited, limiter=limiter) -> list[int]:
                    await timed_async(min(n, 2000), limited)  # warm up
                    samples = await timed_async(n, limited)
                    await limiter.close()
                    return samples

                samples = asyncio.run(run())
                print(f"+ limits ({name:8})        {percentiles(samples)}")
            print(f"edge middlewares (intake + /v1 limits, per request, no app work): "
                  f"{percentiles(asyncio.run(edge_cost(gw, min(n, 20_000))))}")
        finally:
            gw.close()


if __name__ == "__main__":
    main()
