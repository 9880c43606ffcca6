"""Rate limiting for the HTTP layer (spec 1.9-1.12): the store port and the facade.

The facade picks the limits (plan profile, datacenter and velocity halving, bypass list)
and a store counts against them: Redis when configured, shared by every worker, else the
in-process store. Rate limiting must never fail closed (1.12): any error from Redis sends
that one call to the in-process store, and while Redis stays down at most one call every
``retry_interval_s`` tries it again, so the facade is back on Redis within about a second of
Redis coming back. Nothing here touches money: verdicts only admit or refuse.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from domain.rate_limit_clients import (
    Networks,
    VelocityMonitor,
    anonymous_subject,
    halved,
    in_networks,
    ip_subject,
    parse_networks,
)
from domain.rate_limits import (
    ANONYMOUS_PER_DAY,
    DATACENTER_ANONYMOUS_PER_MINUTE,
    IP_PER_MINUTE,
    LEASE_TTL_S,
    Lease,
    LimitProfile,
    Verdict,
)

log = logging.getLogger("gatewayz.rate_limit")

FALLBACK_GAUGE = "gatewayz_rate_limiter_fallback_active"
T = TypeVar("T")


class RateLimitStoreUnavailable(Exception):
    """The shared store cannot answer now; the caller falls back, never refuses."""


class RateLimitStore(Protocol):
    """Counts against limits the caller chose; each method is one atomic decision.

    ``backend`` names the store in the leases it hands out, so a slot is freed where it was
    counted even after the facade has switched stores.
    """

    backend: str

    async def check_ip(self, subject: str, limit: int) -> Verdict: ...
    async def count_ip(self, subject: str, limit: int) -> Verdict: ...
    async def admit_anonymous(self, subject: str, limit: int) -> Verdict: ...
    async def admit_key(self, key_id: str, profile: LimitProfile, lease_id: str) -> Verdict: ...
    async def add_tokens(self, key_id: str, tokens: int) -> None: ...
    async def release(self, lease: Lease) -> None: ...
    async def close(self) -> None: ...


def _open_verdict() -> Verdict:
    return Verdict(True, "ip", 0, [])


class RateLimiter:
    """What the HTTP routes call; every method is async and none raises for a store error."""

    def __init__(self, primary: RateLimitStore | None, fallback: RateLimitStore, *,
                 bypass: Iterable[str] = (), retry_interval_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic,
                 velocity: VelocityMonitor | None = None) -> None:
        self._primary = primary
        self._fallback = fallback
        self._bypass: Networks = parse_networks(bypass)
        self._retry_interval_s = retry_interval_s
        self._clock = clock
        self._velocity = velocity or VelocityMonitor()
        self._fallback_since: float | None = None
        # Lease ids unique across workers without a random draw per request.
        self._lease_prefix = uuid.uuid4().hex[:12] + "-"
        self._leases = itertools.count()
        self._next_probe = 0.0

    # --- construction -------------------------------------------------------------------

    @classmethod
    def embedded(cls, workers: int = 1, *, bypass: Iterable[str] = (),
                 lease_ttl_s: float = LEASE_TTL_S) -> RateLimiter:
        """No Redis configured: the in-process store is the only one (never 'fallback')."""
        from adapters.rate_limit_memory import MemoryRateLimitStore

        return cls(None, MemoryRateLimitStore(workers=workers, lease_ttl_s=lease_ttl_s),
                   bypass=bypass)

    @classmethod
    def with_redis(cls, url: str, prefix: str = "gw", workers: int = 1, *,
                   bypass: Iterable[str] = (), socket_timeout_s: float = 0.25,
                   lease_ttl_s: float = LEASE_TTL_S) -> RateLimiter:
        """Redis shared by all workers, the in-process store (limits / workers) behind it."""
        from adapters.rate_limit_memory import MemoryRateLimitStore
        from adapters.rate_limit_redis import RedisRateLimitStore

        primary = RedisRateLimitStore(url, prefix=prefix, socket_timeout_s=socket_timeout_s,
                                      lease_ttl_s=lease_ttl_s)
        return cls(primary, MemoryRateLimitStore(workers=workers, lease_ttl_s=lease_ttl_s),
                   bypass=bypass)

    async def close(self) -> None:
        if self._primary is not None:
            await self._primary.close()
        await self._fallback.close()

    # --- state for gauges and admin ---------------------------------------------------------

    @property
    def fallback_active(self) -> bool:
        """``gatewayz_rate_limiter_fallback_active``: True while Redis is configured but the
        in-process store answers."""
        return self._fallback_since is not None

    @property
    def fallback_since(self) -> float | None:
        """Monotonic time the fallback began (for the 'in fallback for 5 min' alert)."""
        return self._fallback_since

    @property
    def velocity_active(self) -> bool:
        return self._velocity.active(self._clock())

    def set_bypass(self, networks: Iterable[str]) -> None:
        """Replace the global bypass list (raises ValueError on a malformed entry)."""
        self._bypass = parse_networks(networks)

    def is_bypassed(self, ip: str) -> bool:
        return in_networks(ip, self._bypass)

    def note_status(self, status: int) -> None:
        """Call once per response: feeds velocity mode (only 5xx count as errors)."""
        self._velocity.note(status, self._clock())

    # --- layer 1: per client IP ---------------------------------------------------------------

    def _ip_limit(self, anonymous: bool, datacenter: bool) -> int:
        limit = DATACENTER_ANONYMOUS_PER_MINUTE if anonymous and datacenter else IP_PER_MINUTE
        return halved(limit) if self.velocity_active else limit

    async def check_ip(self, ip: str, anonymous: bool, datacenter: bool) -> Verdict:
        """Before any key lookup: is this IP over its budget? Counts nothing."""
        if self.is_bypassed(ip):
            return _open_verdict()
        limit = self._ip_limit(anonymous, datacenter)
        return await self._run(lambda s: s.check_ip(ip_subject(ip), limit))

    async def count_unauthenticated(self, ip: str, anonymous: bool = False,
                                    datacenter: bool = False) -> Verdict:
        """After the request ended unauthenticated (anonymous, missing or invalid
        credentials): count it. Returns the window as it stands after counting."""
        if self.is_bypassed(ip):
            return _open_verdict()
        limit = self._ip_limit(anonymous, datacenter)
        return await self._run(lambda s: s.count_ip(ip_subject(ip), limit))

    # --- layer 2: per key ---------------------------------------------------------------------

    async def admit_key(self, key_id: str, profile: LimitProfile) -> Verdict:
        """Admit and count one request, taking a concurrency slot (``verdict.lease``) that
        must be handed to ``release`` when its body or stream ends."""
        lease_id = f"{self._lease_prefix}{next(self._leases)}"
        return await self._run(lambda s: s.admit_key(key_id, profile, lease_id))

    async def release(self, lease: Lease | None) -> None:
        if lease is None:
            return
        if lease.backend != self._fallback.backend and self._primary is not None:
            try:
                await self._primary.release(lease)
            except Exception as error:  # noqa: BLE001 - the lease TTL frees it anyway
                log.debug("rate limiter: release left to the lease TTL: %s", error)
            return
        await self._fallback.release(lease)

    async def add_tokens(self, key_id: str, profile: LimitProfile | None, tokens: int) -> None:
        """At settlement: input + output tokens count toward the key's token windows.

        ``profile`` may be None: the windows (UTC minute, hour, day) are the same for every
        profile and only admission compares them with its limits.
        """
        if tokens > 0:
            await self._run(lambda s: s.add_tokens(key_id, tokens))

    # --- layer 3: anonymous -------------------------------------------------------------------

    async def anonymous(self, ip: str) -> Verdict:
        """Admit and count one anonymous request (3 per IP, or IPv6 /64, per UTC day)."""
        limit = halved(ANONYMOUS_PER_DAY) if self.velocity_active else ANONYMOUS_PER_DAY
        return await self._run(lambda s: s.admit_anonymous(anonymous_subject(ip), limit))

    # --- store selection -------------------------------------------------------------------------

    def _may_try_primary(self) -> bool:
        if self._primary is None:
            return False
        if self._fallback_since is None:
            return True
        now = self._clock()
        if now < self._next_probe:
            return False
        # One probe per interval: the concurrent calls meanwhile stay in process.
        self._next_probe = now + self._retry_interval_s
        return True

    async def _run(self, call: Callable[[RateLimitStore], Awaitable[T]]) -> T:
        if self._primary is not None and self._may_try_primary():
            try:
                result = await call(self._primary)
            except RateLimitStoreUnavailable as error:
                self._enter_fallback(error)
            except Exception as error:  # noqa: BLE001 - never fail closed (1.12)
                log.exception("rate limiter: unexpected Redis store error")
                self._enter_fallback(error)
            else:
                if self._fallback_since is not None:
                    log.warning("rate limiter: back on Redis after %.1f s",
                                self._clock() - self._fallback_since)
                    self._fallback_since = None
                return result
        return await call(self._fallback)

    def _enter_fallback(self, error: BaseException) -> None:
        now = self._clock()
        if self._fallback_since is None:
            log.warning("rate limiter: Redis unavailable, in-process fallback: %s", error)
            self._fallback_since = now
        self._next_probe = now + self._retry_interval_s
