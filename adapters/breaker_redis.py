"""Redis breaker store (spec 3.3): one Lua script call per admit, record or reset, shared by
every gateway worker.

Key layout (``p`` = prefix, default ``gw``): ``p:cb:<breaker key>`` hash with
- ``s`` state (absent: closed), ``cf`` consecutive failures, ``hs`` half-open successes,
- ``oa`` opened at, ``pu`` probe lease end (absent: no probe out), as ``%.17g`` strings so a
  float survives Redis exactly (Lua's own number-to-string keeps only 14 digits),
- ``w:<bucket id>`` = ``"<requests>,<failures>"`` for each bucket of the 60 s window.
Each write re-arms the key's TTL (``policy.idle_ttl_s``) so idle breakers vanish; a closed
breaker whose counters are cleared is deleted outright.

The caller's time (``now``, float seconds) is an argument, not Redis TIME: tests drive time,
and the script then decides exactly as ``domain.circuit_breaker``, which it mirrors line by
line. Workers' clocks are NTP-synced, far closer than the 60 s periods at stake.
Reads (``peek``, ``views``) fetch the hash and decide in Python with the same pure rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from application.breakers import BreakerStoreUnavailable
from domain import circuit_breaker as cb
from domain.circuit_breaker import Admission, BreakerPolicy, BreakerState, BreakerView, Transition

T = TypeVar("T")

# KEYS: the breaker hash. ARGV: op (admit | ok | fail | reset), now, consecutive_failures,
# window_s, window_min_requests, window_failure_ratio, open_s, half_open_successes, bucket_s,
# ttl ms. Returns strings: admit -> {allowed, state, retry_at, <transition>}; others ->
# <transition>; a transition is {from, to, at, reason} or nothing.
SCRIPT = """
local op, now = ARGV[1], tonumber(ARGV[2])
local max_cf, window_s, min_req = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ratio, open_s, need_ok = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local bucket_s, ttl_ms = tonumber(ARGV[9]), ARGV[10]
local function g(x) return string.format('%.17g', x) end
local function int(n) return string.format('%d', n) end
local raw = redis.call('HGETALL', KEYS[1])
local s, cf, hs, oa, pu = 'closed', 0, 0, nil, nil
local buckets = {}
for i = 1, #raw, 2 do
  local k, v = raw[i], raw[i + 1]
  if k == 's' then s = v
  elseif k == 'cf' then cf = tonumber(v)
  elseif k == 'hs' then hs = tonumber(v)
  elseif k == 'oa' then oa = tonumber(v)
  elseif k == 'pu' then pu = tonumber(v)
  elseif string.sub(k, 1, 2) == 'w:' then
    local r, f = string.match(v, '^(%d+),(%d+)$')
    buckets[#buckets + 1] = {tonumber(string.sub(k, 3)), k, tonumber(r), tonumber(f)}
  end
end
local function write(...)
  redis.call('HSET', KEYS[1], ...)
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
end
if op == 'reset' then
  redis.call('DEL', KEYS[1])
  if s == 'closed' then return {} end
  return {s, 'closed', g(now), 'reset'}
end
if op == 'admit' then
  if s == 'closed' then return {'1', 'closed', ''} end
  local tr = {}
  if s == 'open' then
    local at = oa + open_s
    if now < at then return {'0', 'open', g(at)} end
    tr = {'open', 'half_open', g(at), 'half_open_timeout'}
    hs = 0
  elseif pu ~= nil and now < pu then
    return {'0', 'half_open', g(pu)}
  end
  write('s', 'half_open', 'hs', int(hs), 'pu', g(now + open_s))
  return {'1', 'half_open', '', tr[1], tr[2], tr[3], tr[4]}
end
local success = op == 'ok'
if s == 'open' then return {} end
if s == 'half_open' then
  if success then
    hs = hs + 1
    if hs >= need_ok then
      redis.call('DEL', KEYS[1])
      return {'half_open', 'closed', g(now), 'probe_succeeded'}
    end
    redis.call('HDEL', KEYS[1], 'pu')
    write('hs', int(hs), 'cf', '0')
    return {}
  end
  redis.call('HDEL', KEYS[1], 'pu')
  write('s', 'open', 'cf', int(cf + 1), 'hs', '0', 'oa', g(now))
  return {'half_open', 'open', g(now), 'probe_failed'}
end
local lo = math.floor((now - window_s) / bucket_s)
local hi = math.floor(now / bucket_s)
local requests, failures, cur_r, cur_f = 0, 0, 0, 0
for _, b in ipairs(buckets) do
  if b[1] < lo or b[1] > hi then
    redis.call('HDEL', KEYS[1], b[2])
  else
    requests, failures = requests + b[3], failures + b[4]
    if b[1] == hi then cur_r, cur_f = b[3], b[4] end
  end
end
local failed = 0
if not success then failed = 1 end
requests, failures = requests + 1, failures + failed
local counter = int(cur_r + 1) .. ',' .. int(cur_f + failed)
if success then cf = 0 else cf = cf + 1 end
local reason = nil
if cf >= max_cf then reason = 'consecutive_failures'
elseif requests >= min_req and failures >= ratio * requests then reason = 'failure_ratio' end
if reason == nil then
  write('s', 'closed', 'cf', int(cf), 'w:' .. int(hi), counter)
  return {}
end
write('s', 'open', 'cf', int(cf), 'hs', '0', 'oa', g(now), 'w:' .. int(hi), counter)
return {'closed', 'open', g(now), reason}
"""


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def decode(fields: dict[str, str]) -> BreakerState:
    """The hash as the pure state record (for peek and views)."""
    buckets = []
    for name, value in fields.items():
        if name.startswith("w:"):
            requests, failures = value.split(",")
            buckets.append((int(name[2:]), int(requests), int(failures)))
    return BreakerState(
        state=fields.get("s", cb.CLOSED),
        consecutive_failures=int(fields.get("cf", 0)),
        half_open_successes=int(fields.get("hs", 0)),
        opened_at=float(fields["oa"]) if "oa" in fields else None,
        probe_until=float(fields["pu"]) if "pu" in fields else None,
        buckets=tuple(sorted(buckets)))


class RedisBreakerStore:
    backend = "redis"

    def __init__(self, url: str, prefix: str = "gw", policy: BreakerPolicy | None = None,
                 socket_timeout_s: float = 0.25) -> None:
        self.policy = policy or BreakerPolicy()
        self.prefix = prefix
        # No retries: a failed call falls back at once; the facade decides when to retry.
        self.client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0), decode_responses=True)
        self._script = self.client.register_script(SCRIPT)
        p = self.policy
        self._policy_args = [p.consecutive_failures, float(p.window_s), p.window_min_requests,
                             float(p.window_failure_ratio), float(p.open_s),
                             p.half_open_successes, float(p.bucket_s),
                             int(p.idle_ttl_s * 1000)]

    def redis_key(self, key: str) -> str:
        return f"{self.prefix}:cb:{key}"

    def _guard(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except (TimeoutError, RedisError, OSError) as error:
            self._drop_connections()
            raise BreakerStoreUnavailable(f"{type(error).__name__}: {error}") from None

    def _drop_connections(self) -> None:
        """After a failure every pooled connection is suspect (a restarted Redis broke them
        all): drop them so the next probe connects afresh."""
        try:
            self.client.connection_pool.disconnect()
        except Exception:  # noqa: BLE001 - best effort; the next call reconnects anyway
            pass

    def _run(self, op: str, key: str, now: float) -> list[str]:
        # float(now): redis-py sends repr(float), which Lua's tonumber reads back exactly.
        args = [op, float(now), *self._policy_args]
        return self._guard(lambda: self._script(keys=[self.redis_key(key)], args=args))

    @staticmethod
    def _transition(key: str, parts: list[str]) -> Transition | None:
        if not parts:
            return None
        from_state, to_state, at, reason = parts
        return Transition(key, from_state, to_state, float(at), reason)

    def admit(self, key: str, now: float) -> Admission:
        allowed, state, retry_at, *transition = self._run("admit", key, now)
        return Admission(allowed == "1", state, float(retry_at) if retry_at else None,
                         self._transition(key, transition))

    def record(self, key: str, success: bool, now: float) -> Transition | None:
        return self._transition(key, self._run("ok" if success else "fail", key, now))

    def reset(self, key: str, now: float) -> Transition | None:
        return self._transition(key, self._run("reset", key, now))

    def state(self, key: str) -> BreakerState:
        return decode(self._guard(lambda: self.client.hgetall(self.redis_key(key))))

    def peek(self, key: str, now: float) -> Admission:
        return cb.peek(key, self.state(key), float(now), self.policy)

    def views(self, now: float) -> list[BreakerView]:
        """Admin listing: SCAN (never KEYS, which would block Redis) then one pipelined read."""
        now = float(now)
        start = len(self.redis_key(""))

        def read() -> list[tuple[str, dict[str, str]]]:
            match = f"{_glob_escape(self.prefix)}:cb:*"
            names = sorted(set(self.client.scan_iter(match=match, count=1000)))
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(name)
            return list(zip(names, pipe.execute(), strict=True))

        return [cb.view(name[start:], decode(fields), now, self.policy)
                for name, fields in self._guard(read) if fields]

    def close(self) -> None:
        self.client.close()
