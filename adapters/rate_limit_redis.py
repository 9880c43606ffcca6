"""Redis rate-limit store: one Lua script per decision, shared by every gateway worker.

Key layout (``p`` = prefix, default ``gw``; the ``{key_id}`` hash tag keeps a key's two
entries in one cluster slot, as a script needs):
- ``p:rl:key:{<key_id>}`` hash: ``tat`` (GCRA, us), ``h``/``hc`` hour window id and count,
  ``d``/``dc`` day, ``tm``/``tmc``, ``th``/``thc``, ``td``/``tdc`` token windows;
  expires after the UTC day (or the TAT, if later) plus 60 s.
- ``p:rl:key:{<key_id>}:leases`` sorted set: lease id scored by its expiry (us); expired
  leases are pruned by each admission, the set expires a lease TTL after the last one.
- ``p:rl:ip:<ip>`` sorted set: unauthenticated arrivals of the last 60 s (layer 1).
- ``p:rl:anon:<ip or /64>`` hash: ``d`` day id, ``c`` anonymous requests that day.
Time is Redis server time (TIME, in us), so workers' clocks never matter. ``at_us`` lets a
test replay arrivals at chosen instants against the pure reference rules.
"""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from application.rate_limiting import RateLimitStoreUnavailable
from domain.rate_limit_headers import Window
from domain.rate_limits import (
    IP_PER_MINUTE,
    LEASE_TTL_S,
    US,
    Gcra,
    KeyCounts,
    KeyDecision,
    Lease,
    LimitProfile,
    Verdict,
    anonymous_verdict,
    key_verdict,
    sliding_window,
    window_verdict,
)

# Lua numbers are doubles: written values go through %d so 1.7e15 never becomes "1.7e+15".
_COMMON = """
local function int(n) return string.format('%d', n) end
local function clock()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function wid(now, sec) return math.floor(now / (sec * 1000000)) end
local function until_end(now, sec) return (wid(now, sec) + 1) * sec * 1000000 - now end
"""

# Mirrors domain.rate_limits.decide_key. KEYS: hash, leases. ARGV: at_us, emission_us,
# tau_us, req/hour, req/day, tok/min, tok/hour, tok/day, concurrency, lease id, lease ttl us.
# Returns {code (0 ok, 1 rate, 2 concurrency), wait, now, tat, hc, dc, tm, th, td, leases}.
ADMIT_KEY = _COMMON + """
local now = clock()
local v = redis.call('HMGET', KEYS[1], 'tat', 'h', 'hc', 'd', 'dc', 'tm', 'tmc', 'th', 'thc',
                     'td', 'tdc')
local function used(i, sec)
  if tonumber(v[i]) == wid(now, sec) then return tonumber(v[i + 1]) or 0 end
  return 0
end
local hc, dc = used(2, 3600), used(4, 86400)
local tm, th, td = used(6, 60), used(8, 3600), used(10, 86400)
local tat = tonumber(v[1]) or now
if tat < now then tat = now end
local code, wait = 0, 0
if tat - now > tonumber(ARGV[3]) then code = 1; wait = tat - now - tonumber(ARGV[3]) end
local function over(n, limit, sec)
  if n >= tonumber(limit) then
    code = 1
    wait = math.max(wait, until_end(now, sec))
  end
end
over(hc, ARGV[4], 3600); over(dc, ARGV[5], 86400)
over(tm, ARGV[6], 60); over(th, ARGV[7], 3600); over(td, ARGV[8], 86400)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', int(now))
local leases = redis.call('ZCARD', KEYS[2])
if code == 0 and leases >= tonumber(ARGV[9]) then code = 2; wait = 1000000 end
if code == 0 then
  tat = tat + tonumber(ARGV[2]); hc = hc + 1; dc = dc + 1
  redis.call('HSET', KEYS[1], 'tat', int(tat), 'h', int(wid(now, 3600)), 'hc', int(hc),
             'd', int(wid(now, 86400)), 'dc', int(dc))
  local keep = math.max(until_end(now, 86400), tat - now) + 60000000
  redis.call('PEXPIRE', KEYS[1], int(math.ceil(keep / 1000)))
  local ttl = tonumber(ARGV[11])
  redis.call('ZADD', KEYS[2], int(now + ttl), ARGV[10])
  redis.call('PEXPIRE', KEYS[2], int(math.ceil(ttl / 1000) + 60000))
  leases = leases + 1
end
return {code, wait, now, tat, hc, dc, tm, th, td, leases}
"""

# Settlement. KEYS: hash. ARGV: at_us, tokens. Adds to the three current token windows.
ADD_TOKENS = _COMMON + """
local now = clock()
local n = tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'tm', 'tmc', 'th', 'thc', 'td', 'tdc')
local slots = {{'tm', 'tmc', 60}, {'th', 'thc', 3600}, {'td', 'tdc', 86400}}
for i, s in ipairs(slots) do
  local id = wid(now, s[3])
  local c = 0
  if tonumber(v[2 * i - 1]) == id then c = tonumber(v[2 * i]) or 0 end
  redis.call('HSET', KEYS[1], s[1], int(id), s[2], int(c + n))
end
local keep = math.ceil((until_end(now, 86400) + 60000000) / 1000)
if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], int(keep)) end
return {1}
"""

# Layer 1. KEYS: arrivals. ARGV: at_us, limit, then for a count: nonce, cap.
# Returns {now, count, newest, freeing} (see domain.rate_limits.sliding_window).
IP_WINDOW = _COMMON + """
local now = clock()
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now - 60000000))
if ARGV[3] then
  redis.call('ZADD', KEYS[1], int(now), int(now) .. '-' .. ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[4]) + 1))
  redis.call('PEXPIRE', KEYS[1], 61000)
end
local n = redis.call('ZCARD', KEYS[1])
local newest, freeing = 0, 0
if n > 0 then newest = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]) end
if n >= limit then
  freeing = tonumber(redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')[2])
end
return {now, n, newest, freeing}
"""

# Layer 3. KEYS: hash. ARGV: at_us, limit. Returns {allowed, now, used today}.
ANONYMOUS = _COMMON + """
local now = clock()
local day = wid(now, 86400)
local v = redis.call('HMGET', KEYS[1], 'd', 'c')
local used = 0
if tonumber(v[1]) == day then used = tonumber(v[2]) or 0 end
if used >= tonumber(ARGV[2]) then return {0, now, used} end
used = used + 1
redis.call('HSET', KEYS[1], 'd', int(day), 'c', int(used))
redis.call('PEXPIRE', KEYS[1], int(math.ceil(until_end(now, 86400) / 1000) + 60000))
return {1, now, used}
"""

_CODES = {0: None, 1: "rate_limit_exceeded", 2: "concurrency_limit_exceeded"}


class RedisRateLimitStore:
    backend = "redis"

    def __init__(self, url: str, prefix: str = "gw", socket_timeout_s: float = 0.25,
                 lease_ttl_s: float = LEASE_TTL_S) -> None:
        # No retries: a failed call falls back at once; the facade decides when to retry.
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0))
        self.prefix = prefix
        self.lease_ttl_us = int(lease_ttl_s * US)
        self._admit = self.client.register_script(ADMIT_KEY)
        self._tokens = self.client.register_script(ADD_TOKENS)
        self._ip = self.client.register_script(IP_WINDOW)
        self._anon = self.client.register_script(ANONYMOUS)

    def key_keys(self, key_id: str) -> list[str]:
        base = f"{self.prefix}:rl:key:{{{key_id}}}"
        return [base, f"{base}:leases"]

    def ip_key(self, subject: str) -> str:
        return f"{self.prefix}:rl:ip:{subject}"

    def anonymous_key(self, subject: str) -> str:
        return f"{self.prefix}:rl:anon:{subject}"

    async def _call(self, script: AsyncScript, keys: list[str], args: list) -> list[int]:
        try:
            return [int(x) for x in await script(keys=keys, args=args)]
        except (TimeoutError, RedisError, OSError) as error:
            await self._drop_connections()
            raise RateLimitStoreUnavailable(f"{type(error).__name__}: {error}") from None

    async def _drop_connections(self) -> None:
        """After a failure every pooled connection is suspect (a restarted Redis broke them
        all): drop them, so the next probe connects afresh instead of meeting one dead
        connection per probe, which kept a busy worker off Redis for seconds."""
        try:
            await self.client.connection_pool.disconnect()
        except Exception:  # noqa: BLE001 - best effort; the next call reconnects anyway
            pass

    @staticmethod
    def _at(at_us: int | None) -> str:
        return "" if at_us is None else str(at_us)

    # --- layer 1 ---------------------------------------------------------------------------

    async def _ip_window(self, subject: str, limit: int, count: bool,
                         at_us: int | None) -> tuple[bool, int, Window]:
        extra = [uuid.uuid4().hex[:12], max(limit, IP_PER_MINUTE)] if count else []
        now, n, newest, freeing = await self._call(
            self._ip, [self.ip_key(subject)], [self._at(at_us), limit, *extra])
        return sliding_window(limit, now, n, newest, freeing)

    async def check_ip(self, subject: str, limit: int, *, at_us: int | None = None) -> Verdict:
        allowed, wait, window = await self._ip_window(subject, limit, False, at_us)
        return window_verdict("ip", window, allowed, wait)

    async def count_ip(self, subject: str, limit: int, *, at_us: int | None = None) -> Verdict:
        _, wait, window = await self._ip_window(subject, limit, True, at_us)
        return window_verdict("ip", window, True, wait)

    # --- layer 3 ---------------------------------------------------------------------------

    async def admit_anonymous(self, subject: str, limit: int, *,
                              at_us: int | None = None) -> Verdict:
        allowed, now, used = await self._call(self._anon, [self.anonymous_key(subject)],
                                              [self._at(at_us), limit])
        return anonymous_verdict(limit, now, used, bool(allowed))

    # --- layer 2 ---------------------------------------------------------------------------

    async def admit_key(self, key_id: str, profile: LimitProfile, lease_id: str, *,
                        at_us: int | None = None) -> Verdict:
        gcra = Gcra.per_minute(profile.requests_per_minute, profile.burst)
        p = profile
        code, wait, now, tat, hc, dc, tm, th, td, _ = await self._call(
            self._admit, self.key_keys(key_id),
            [self._at(at_us), gcra.emission_us, gcra.tau_us, p.requests_per_hour,
             p.requests_per_day, p.tokens_per_minute, p.tokens_per_hour, p.tokens_per_day,
             p.concurrency, lease_id, self.lease_ttl_us])
        decision = KeyDecision(_CODES[code], wait, tat)
        lease = Lease(key_id, lease_id, self.backend) if code == 0 else None
        return key_verdict(profile, now, decision, KeyCounts(hc, dc, tm, th, td), lease)

    async def add_tokens(self, key_id: str, tokens: int, *, at_us: int | None = None) -> None:
        await self._call(self._tokens, self.key_keys(key_id)[:1], [self._at(at_us), tokens])

    async def release(self, lease: Lease) -> None:
        # One ZREM is atomic on its own; no script needed to free a slot.
        try:
            await self.client.zrem(self.key_keys(lease.key_id)[1], lease.lease_id)
        except (TimeoutError, RedisError, OSError) as error:
            await self._drop_connections()
            raise RateLimitStoreUnavailable(str(error)) from None

    async def open_leases(self, key_id: str) -> int:
        return int(await self.client.zcard(self.key_keys(key_id)[1]))

    async def close(self) -> None:
        await self.client.aclose()
