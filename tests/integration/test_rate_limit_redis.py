"""The Redis rate limiter on the real server: the cross-worker bound, every layer, and the
fallback to (and return from) the in-process limiter. Each test has its own key prefix."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis
from conftest import REDIS_URL, require_redis

from adapters.rate_limit_memory import MemoryRateLimitStore
from adapters.rate_limit_redis import RedisRateLimitStore
from application.rate_limiting import RateLimiter
from domain.rate_limits import DEFAULT_PROFILE, RESTRICTED_PROFILE, US

pytestmark = pytest.mark.redis


@pytest.fixture
def prefix() -> Iterator[str]:
    require_redis()  # unreachable -> the test fails, never skips
    name = f"rltest-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_two_workers_at_ten_times_the_rate_admit_within_the_bound(prefix):
    rate_per_s, burst = 50, 20
    profile = replace(DEFAULT_PROFILE, requests_per_minute=rate_per_s * 60, burst=burst,
                      requests_per_hour=10**6, requests_per_day=10**7, concurrency=10**4)
    admitted = 0
    starts: list[float] = []

    async def scenario() -> None:
        workers = [RateLimiter.with_redis(REDIS_URL, prefix, workers=2) for _ in range(2)]
        # Open each worker's connections first: connecting is not time the key was offered.
        await asyncio.gather(*(workers[i % 2].check_ip("192.0.2.1", False, False)
                               for i in range(64)))
        deadline = time.monotonic() + 3.0

        async def task(i: int) -> None:
            nonlocal admitted
            limiter = workers[i % 2]
            while (now := time.monotonic()) < deadline:
                starts.append(now)
                verdict = await limiter.admit_key("key_bound", profile)
                if verdict.allowed:
                    admitted += 1
                    await limiter.release(verdict.lease)
                await asyncio.sleep(64 / (10 * rate_per_s))  # 64 tasks at 10x the rate

        begin = time.monotonic()
        await asyncio.gather(*(task(i) for i in range(64)))
        end = time.monotonic()
        assert not any(w.fallback_active for w in workers)
        for w in workers:
            await w.close()
        # Upper: the server saw every admission within [begin, end]. Lower: requests kept
        # arriving until the last start, so GCRA had that long to admit.
        assert admitted <= burst + rate_per_s * (end - begin)
        assert admitted >= 0.95 * (burst + rate_per_s * (max(starts) - begin))

    asyncio.run(scenario())


def test_the_lua_script_decides_exactly_as_the_pure_rules(prefix):
    """Random arrivals replayed at chosen instants (``at_us``) across an hour and a day
    boundary: Redis and the in-process store (the domain rules) give identical verdicts."""
    profile = replace(RESTRICTED_PROFILE, requests_per_minute=30, burst=4, requests_per_hour=12,
                      requests_per_day=15, tokens_per_minute=50, tokens_per_hour=120,
                      tokens_per_day=200, concurrency=3)
    now = int(datetime(2025, 3, 1, 23, 58, tzinfo=UTC).timestamp()) * US
    memory = MemoryRateLimitStore(clock_us=lambda: now)
    rng = random.Random(7)

    def same(a, b) -> None:
        assert (a.allowed, a.code, a.retry_after_s, a.headers, a.scope) == (
            b.allowed, b.code, b.retry_after_s, b.headers, b.scope)

    async def scenario() -> None:
        nonlocal now
        store = RedisRateLimitStore(REDIS_URL, prefix)
        leases = []
        for step in range(400):
            now += rng.choice([0, 0, 1, 250_000, 3 * US, 20 * US])
            op = rng.random()
            if op < 0.45:
                lid = f"l{step}"
                a = await store.admit_key("key_ref", profile, lid, at_us=now)
                b = await memory.admit_key("key_ref", profile, lid)
                same(a, b)
                if a.lease:
                    leases.append(a.lease)
            elif op < 0.6 and leases:
                lease = leases.pop(rng.randrange(len(leases)))
                await store.release(lease)
                await memory.release(replace(lease, backend="memory"))
            elif op < 0.7:
                n = rng.randrange(0, 40)
                await store.add_tokens("key_ref", n, at_us=now)
                await memory.add_tokens("key_ref", n)
            elif op < 0.8:
                same(await store.check_ip("192.0.2.1", 5, at_us=now),
                     await memory.check_ip("192.0.2.1", 5))
            elif op < 0.9:
                same(await store.count_ip("192.0.2.1", 5, at_us=now),
                     await memory.count_ip("192.0.2.1", 5))
            else:
                same(await store.admit_anonymous("192.0.2.2", 2, at_us=now),
                     await memory.admit_anonymous("192.0.2.2", 2))
        await store.close()

    asyncio.run(scenario())


def test_concurrency_retry_after_tokens_and_ttls(prefix):
    async def scenario() -> None:
        rl = RateLimiter.with_redis(REDIS_URL, prefix)
        held = [await rl.admit_key("key_conc", DEFAULT_PROFILE) for _ in range(50)]
        assert all(v.allowed for v in held)
        fifty_first = await rl.admit_key("key_conc", DEFAULT_PROFILE)
        assert fifty_first.code == "concurrency_limit_exceeded" and not fifty_first.allowed
        assert dict(fifty_first.headers)["X-Gatewayz-RateLimit-Scope"] == "key"
        await rl.release(held[0].lease)
        assert (await rl.admit_key("key_conc", DEFAULT_PROFILE)).allowed

        for _ in range(3):  # restricted: a burst of 3, then one per 12 s
            verdict = await rl.admit_key("key_r", RESTRICTED_PROFILE)
            await rl.release(verdict.lease)
        refused = await rl.admit_key("key_r", RESTRICTED_PROFILE)
        assert refused.code == "rate_limit_exceeded" and refused.retry_after_s == 12
        assert dict(refused.headers)["Retry-After"] == "12"

        tokens = replace(DEFAULT_PROFILE, tokens_per_minute=100)
        assert (await rl.admit_key("key_t", tokens)).allowed
        await rl.add_tokens("key_t", tokens, 100)
        over = await rl.admit_key("key_t", tokens)
        assert over.code == "rate_limit_exceeded" and 1 <= over.retry_after_s <= 60
        assert dict(over.headers)["x-ratelimit-remaining-tokens"] == "0"
        await rl.close()

        client = redis.asyncio.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        assert keys and all([await client.pttl(k) > 0 for k in keys])  # nothing lives forever
        await client.aclose()

    asyncio.run(scenario())


def test_retry_after_is_within_a_second_of_the_true_wait(prefix):
    async def scenario() -> None:
        store = RedisRateLimitStore(REDIS_URL, prefix)
        t0 = int(datetime(2025, 3, 1, 10, 0, 5, tzinfo=UTC).timestamp()) * US
        for i in range(3):
            verdict = await store.admit_key("key_w", RESTRICTED_PROFILE, f"a{i}", at_us=t0)
            await store.release(verdict.lease)
        refused = await store.admit_key("key_w", RESTRICTED_PROFILE, "b", at_us=t0 + 400_000)
        assert refused.retry_after_s == 12  # true wait 11.6 s
        true_wait = 11_600_000
        early = await store.admit_key("key_w", RESTRICTED_PROFILE, "c",
                                      at_us=t0 + 400_000 + true_wait - 1)
        assert not early.allowed and early.retry_after_s == 1
        assert (await store.admit_key("key_w", RESTRICTED_PROFILE, "d",
                                      at_us=t0 + 400_000 + true_wait)).allowed
        await store.close()

    asyncio.run(scenario())


def test_layer_one_and_layer_three_shared_by_workers(prefix):
    async def scenario() -> None:
        a = RateLimiter.with_redis(REDIS_URL, prefix, bypass=["192.0.2.0/24"])
        b = RateLimiter.with_redis(REDIS_URL, prefix)
        for i in range(300):
            await (a if i % 2 else b).count_unauthenticated("198.51.100.1")
        over = await a.check_ip("198.51.100.1", anonymous=False, datacenter=False)
        h = dict(over.headers)
        assert not over.allowed and h["X-Gatewayz-RateLimit-Scope"] == "ip"
        assert 1 <= int(h["Retry-After"]) <= 60 and "RateLimit-Policy" in h
        for _ in range(60):
            await b.count_unauthenticated("198.51.100.2", anonymous=True, datacenter=True)
        assert not (await a.check_ip("198.51.100.2", anonymous=True, datacenter=True)).allowed
        assert (await a.check_ip("198.51.100.2", anonymous=False, datacenter=True)).allowed
        for _ in range(301):
            await a.count_unauthenticated("192.0.2.5")
        assert (await a.check_ip("192.0.2.5", True, True)).allowed  # bypass-listed

        answers = [(await (a, b)[i % 2].anonymous(f"2001:db8:7:7::{i}")).allowed
                   for i in range(4)]
        assert answers == [True, True, True, False]  # one /64, one UTC-day budget of 3
        fourth = await a.anonymous("2001:db8:7:7::99")
        assert fourth.scope == "anonymous" and fourth.code == "rate_limit_exceeded"
        assert (await a.anonymous("2001:db8:7:8::1")).allowed

        for i in range(100):
            a.note_status(500 if i < 25 else 404)
        for _ in range(150):
            await a.count_unauthenticated("198.51.100.3")
        assert not (await a.check_ip("198.51.100.3", False, False)).allowed  # velocity: 150
        assert (await b.check_ip("198.51.100.3", False, False)).allowed  # b saw no 5xx
        await a.close()
        await b.close()

    asyncio.run(scenario())


def test_unreachable_redis_falls_back_and_never_raises(prefix):
    async def scenario() -> None:
        rl = RateLimiter.with_redis("redis://127.0.0.1:1/0", prefix, workers=4)
        verdicts = await asyncio.gather(*(rl.admit_key("key_f", DEFAULT_PROFILE)
                                          for _ in range(40)))
        assert rl.fallback_active
        assert sum(v.allowed for v in verdicts) == 12  # 50 concurrent / 4 workers
        assert all(v.headers for v in verdicts)
        assert (await rl.check_ip("198.51.100.1", False, False)).allowed
        assert (await rl.anonymous("198.51.100.1")).allowed
        await rl.add_tokens("key_f", DEFAULT_PROFILE, 10)
        for v in verdicts:
            await rl.release(v.lease)
        await rl.close()

    asyncio.run(scenario())


class Proxy:
    """A TCP relay to Redis that a test can cut and restore on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 6379)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):  # the other side was cut
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def test_redis_lost_mid_run_then_back_within_two_seconds(prefix):
    async def scenario() -> None:
        proxy = Proxy()
        await proxy.start()
        rl = RateLimiter.with_redis(f"redis://127.0.0.1:{proxy.port}/0", prefix)
        before = await rl.admit_key("key_p", DEFAULT_PROFILE)
        assert before.allowed and before.lease.backend == "redis" and not rl.fallback_active

        await proxy.stop()  # Redis "killed": open connections cut, new ones refused
        during = await asyncio.gather(*(rl.admit_key("key_p", DEFAULT_PROFILE)
                                        for _ in range(20)))
        assert rl.fallback_active and all(v.allowed for v in during)
        assert {v.lease.backend for v in during} == {"memory"}
        await rl.release(before.lease)  # its store is down: left to the lease TTL, no error

        await proxy.start()
        back_at = time.monotonic()
        while rl.fallback_active and time.monotonic() - back_at < 2.0:
            await rl.admit_key("key_p", DEFAULT_PROFILE)
            await asyncio.sleep(0.05)
        assert not rl.fallback_active, "still on the fallback 2 s after Redis came back"
        after = await rl.admit_key("key_p", DEFAULT_PROFILE)
        assert after.lease.backend == "redis"
        for v in during:
            await rl.release(v.lease)  # freed in memory, where they were counted
        await rl.close()
        await proxy.stop()

    asyncio.run(scenario())
