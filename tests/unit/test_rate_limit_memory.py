"""The in-process limiter (1.12) and the embedded facade: bounds, expiry, division, layers."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from adapters.rate_limit_memory import MemoryRateLimitStore
from application.rate_limiting import RateLimiter
from domain.rate_limits import DEFAULT_PROFILE, RESTRICTED_PROFILE, US

START = int(datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC).timestamp()) * US
WIDE = replace(DEFAULT_PROFILE, requests_per_minute=6000, burst=1000, concurrency=10_000)


class Clock:
    def __init__(self, us: int = START) -> None:
        self.us = us

    def __call__(self) -> int:
        return self.us

    def advance(self, seconds: float) -> None:
        self.us += int(seconds * US)


def store(clock: Clock, **kwargs) -> MemoryRateLimitStore:
    return MemoryRateLimitStore(clock_us=clock, **kwargs)


def test_at_most_10000_tracked_keys_least_recently_used_go_first():
    async def scenario() -> MemoryRateLimitStore:
        s = store(Clock())
        await s.add_tokens("key_0", 1)
        for i in range(1, 10_050):
            await s.add_tokens(f"key_{i}", 1)
            if i % 1000 == 0:
                await s.add_tokens("key_0", 1)  # kept recently used
        return s

    s = asyncio.run(scenario())
    assert len(s) == 10_000
    assert s.tracked("key:key_0") and s.tracked("key:key_10049")
    assert not s.tracked("key:key_1") and not s.tracked("key:key_49")


def test_idle_subjects_expire_after_15_minutes():
    clock = Clock()
    s = store(clock)

    async def scenario() -> None:
        await s.admit_key("key_idle", WIDE, "l1")
        await s.count_ip("198.51.100.1", 300)
        clock.advance(600)
        await s.add_tokens("key_busy", 5)
        clock.advance(301)  # key_idle and the IP: 901 s idle; key_busy: 301 s
        await s.add_tokens("key_busy", 5)

    asyncio.run(scenario())
    assert not s.tracked("key:key_idle") and not s.tracked("ip:198.51.100.1")
    assert s.tracked("key:key_busy") and len(s) == 1


def test_limits_are_divided_by_the_worker_count():
    async def scenario() -> tuple[int, bool, list[bool], int]:
        s = store(Clock(), workers=4)
        burst = [(await s.admit_key("k", WIDE, f"l{i}")).allowed for i in range(400)]
        for _ in range(75):
            await s.count_ip("203.0.113.5", 300)
        ip = (await s.check_ip("203.0.113.5", 300)).allowed
        anon = [(await s.admit_anonymous("203.0.113.6", 3)).allowed for _ in range(2)]
        conc = sum([(await s.admit_key("c", DEFAULT_PROFILE, f"c{i}")).allowed
                    for i in range(20)])
        return sum(burst), ip, anon, conc

    admitted, ip_allowed, anon, conc = asyncio.run(scenario())
    assert admitted == 250  # burst 1000 / 4
    assert not ip_allowed  # 300 / 4 = 75 per minute
    assert anon == [True, False]  # 3 / 4 -> at least one
    assert conc == 12  # 50 concurrent / 4


def test_concurrency_slots_are_held_until_released_or_their_lease_expires():
    clock = Clock()
    s = store(clock, lease_ttl_s=600)
    profile = replace(WIDE, concurrency=2)

    async def scenario() -> None:
        a = await s.admit_key("k", profile, "a")
        b = await s.admit_key("k", profile, "b")
        third = await s.admit_key("k", profile, "c")
        assert a.lease and b.lease and third.lease is None
        assert third.code == "concurrency_limit_exceeded" and third.retry_after_s == 1
        assert dict(third.headers)["X-Gatewayz-RateLimit-Scope"] == "key"
        await s.release(a.lease)
        assert (await s.admit_key("k", profile, "d")).allowed
        assert not (await s.admit_key("k", profile, "e")).allowed
        clock.advance(600)  # leases b and d were never released: their worker died
        assert s.open_leases("k") == 2
        assert (await s.admit_key("k", profile, "f")).allowed
        assert s.open_leases("k") == 1

    asyncio.run(scenario())


def test_request_and_token_windows_reset_at_their_utc_boundaries():
    clock = Clock(START + 3599 * US)  # 10:59:59
    s = store(clock)
    hourly = replace(WIDE, requests_per_hour=2, tokens_per_minute=100)

    async def scenario() -> None:
        assert (await s.admit_key("h", hourly, "1")).allowed
        assert (await s.admit_key("h", hourly, "2")).allowed
        refused = await s.admit_key("h", hourly, "3")
        assert refused.code == "rate_limit_exceeded" and refused.retry_after_s == 1
        clock.advance(1)  # 11:00:00
        ok = await s.admit_key("h", hourly, "4")
        assert ok.allowed
        await s.add_tokens("h", 100)
        no = await s.admit_key("h", hourly, "5")
        assert not no.allowed and no.retry_after_s == 60
        assert dict(no.headers)["x-ratelimit-remaining-tokens"] == "0"
        clock.advance(60)
        assert (await s.admit_key("h", hourly, "6")).allowed

    asyncio.run(scenario())


def test_restricted_retry_after_matches_the_true_wait():
    clock = Clock()
    s = store(clock)

    async def scenario() -> None:
        for i in range(3):  # the burst of 3; concurrency 1, so each is released
            verdict = await s.admit_key("r", RESTRICTED_PROFILE, str(i))
            assert verdict.allowed
            await s.release(verdict.lease)
        clock.advance(0.4)
        refused = await s.admit_key("r", RESTRICTED_PROFILE, "x")
        assert refused.retry_after_s == 12  # true wait 11.6 s
        clock.advance(11.6 - 0.001)
        assert not (await s.admit_key("r", RESTRICTED_PROFILE, "y")).allowed
        clock.advance(0.001)
        assert (await s.admit_key("r", RESTRICTED_PROFILE, "z")).allowed

    asyncio.run(scenario())


def test_embedded_facade_layers_bypass_and_velocity():
    async def scenario() -> None:
        rl = RateLimiter.embedded(bypass=["192.0.2.0/24"])
        assert not rl.fallback_active
        for _ in range(300):
            await rl.count_unauthenticated("198.51.100.7")
        over = await rl.check_ip("198.51.100.7", anonymous=False, datacenter=False)
        h = dict(over.headers)
        assert not over.allowed and over.code == "rate_limit_exceeded"
        assert h["X-Gatewayz-RateLimit-Scope"] == "ip" and int(h["Retry-After"]) >= 1
        assert (await rl.check_ip("198.51.100.7", False, False)).code  # a check counts nothing
        for _ in range(60):
            await rl.count_unauthenticated("198.51.100.8", anonymous=True, datacenter=True)
        assert not (await rl.check_ip("198.51.100.8", anonymous=True, datacenter=True)).allowed
        assert (await rl.check_ip("198.51.100.8", anonymous=False, datacenter=True)).allowed
        for _ in range(400):
            await rl.count_unauthenticated("192.0.2.9")
        assert (await rl.check_ip("192.0.2.9", True, True)).allowed  # bypass-listed
        answers = [(await rl.anonymous("2001:db8:0:1::1")).allowed,
                   (await rl.anonymous("2001:db8:0:1::2")).allowed,
                   (await rl.anonymous("2001:db8:0:1::3")).allowed]
        fourth = await rl.anonymous("2001:db8:0:1:ffff::9")  # same /64
        assert answers == [True] * 3 and not fourth.allowed and fourth.scope == "anonymous"
        assert (await rl.anonymous("2001:db8:0:2::1")).allowed  # another /64
        # Velocity mode halves layers 1 and 3.
        for _ in range(150):
            await rl.count_unauthenticated("198.51.100.9")
        assert (await rl.check_ip("198.51.100.9", False, False)).allowed
        for i in range(100):
            rl.note_status(502 if i < 25 else 200)
        assert rl.velocity_active
        assert not (await rl.check_ip("198.51.100.9", False, False)).allowed
        assert (await rl.anonymous("203.0.113.77")).allowed
        assert not (await rl.anonymous("203.0.113.77")).allowed  # 3 halved to 1
        v = await rl.admit_key("key_x", DEFAULT_PROFILE)
        assert v.allowed and v.lease is not None and v.lease.backend == "memory"
        await rl.release(v.lease)
        await rl.add_tokens("key_x", DEFAULT_PROFILE, 10)
        await rl.close()

    asyncio.run(scenario())
