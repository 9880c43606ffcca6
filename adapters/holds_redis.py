"""Redis hold store: check-and-reserve in one Lua script, shared by every gateway worker.

Per account: ``gw:bal:{id}`` holds the projected pools (written only from projector
commits, newest ``version`` wins) and the reserved sums ``rt ra rp``; ``gw:holds:{id}``
maps each open hold to ``t,a,p,placed_epoch,worker`` (its reservation by pool, when, by whom).
"""

from __future__ import annotations

import redis

from application.ports import BalanceSnapshot, CachedHold, HoldOutcome, HoldStoreUnavailable

# Lua numbers are doubles: format them as plain integers, never "-0" or "1e+14".
_INT = """
local function int(n) return string.format('%d', n) end
"""

_COMMON = _INT + """
local function sums_from_holds(holds_key)
  local t, a, p = 0, 0, 0
  local vals = redis.call('HVALS', holds_key)
  for _, v in ipairs(vals) do
    local x, y, z = string.match(v, '(%-?%d+),(%-?%d+),(%-?%d+)')
    t = t + tonumber(x); a = a + tonumber(y); p = p + tonumber(z)
  end
  return t, a, p
end
local function release(bal_key, holds_key, hold_id)
  local v = redis.call('HGET', holds_key, hold_id)
  if v then
    local x, y, z = string.match(v, '(%-?%d+),(%-?%d+),(%-?%d+)')
    redis.call('HINCRBY', bal_key, 'rt', int(0 - tonumber(x)))
    redis.call('HINCRBY', bal_key, 'ra', int(0 - tonumber(y)))
    redis.call('HINCRBY', bal_key, 'rp', int(0 - tonumber(z)))
    redis.call('HDEL', holds_key, hold_id)
  end
end
"""

# KEYS: bal, holds. ARGV: hold_id, amount, now, worker[, 'probe']. Returns {status, a, b, c};
# a probe only reports what is available.
PLACE = _INT + """
local b = redis.call('HMGET', KEYS[1], 'trial', 'allowance', 'purchased', 'ends', 'active',
                     'rt', 'ra', 'rp')
if not b[1] then return {-1, 0, 0, 0} end
if ARGV[5] ~= 'probe' and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return {2, 0, 0, 0}
end
local amount = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local function free(balance, reserved, usable)
  if not usable then return 0 end
  local f = tonumber(balance) - tonumber(reserved or 0)
  if f < 0 then return 0 end
  return f
end
local ft = free(b[1], b[6], tonumber(b[4]) > now)
local fa = free(b[2], b[7], b[5] == '1')
local fp = free(b[3], b[8], true)
if ft + fa + fp < amount or ARGV[5] == 'probe' then return {0, int(ft + fa + fp), 0, 0} end
local t = math.min(ft, amount)
local a = math.min(fa, amount - t)
local p = amount - t - a
redis.call('HSET', KEYS[2], ARGV[1], int(t) .. ',' .. int(a) .. ',' .. int(p) .. ',' .. int(now)
           .. ',' .. ARGV[4])
redis.call('HINCRBY', KEYS[1], 'rt', int(t))
redis.call('HINCRBY', KEYS[1], 'ra', int(a))
redis.call('HINCRBY', KEYS[1], 'rp', int(p))
return {1, int(t), int(a), int(p)}
"""

# A projector commit. KEYS: bal, holds. ARGV: version, trial, allowance, purchased, ends,
# active, then the hold ids that commit ended. An account with no balance here is not
# created: only reconcile loads one, with its open holds (a balance without them would let
# money already reserved be spent again, e.g. after Redis lost its data).
PUBLISH = _COMMON + """
for i = 7, #ARGV do release(KEYS[1], KEYS[2], ARGV[i]) end
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(ARGV[1]) >= tonumber(current) then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'trial', ARGV[2], 'allowance', ARGV[3],
             'purchased', ARGV[4], 'ends', ARGV[5], 'active', ARGV[6])
end
return 1
"""

# Agreement with durable facts. KEYS: bal, holds. ARGV: version, trial, allowance, purchased,
# ends, active, n_release, release ids..., then hold_id, t, a, p quadruples to add. Releases
# always apply (a hold ended at any version is ended for good); adds and pools only when this
# snapshot is not older than the one held, and the reserved sums are recounted from the holds.
RECONCILE = _COMMON + """
local n = tonumber(ARGV[7])
for i = 8, 7 + n do release(KEYS[1], KEYS[2], ARGV[i]) end
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(ARGV[1]) < tonumber(current) then return 0 end
for i = 8 + n, #ARGV, 4 do
  redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i+1] .. ',' .. ARGV[i+2] .. ',' .. ARGV[i+3]
             .. ',0,')
end
local t, a, p = sums_from_holds(KEYS[2])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'trial', ARGV[2], 'allowance', ARGV[3],
           'purchased', ARGV[4], 'ends', ARGV[5], 'active', ARGV[6],
           'rt', int(t), 'ra', int(a), 'rp', int(p))
return 1
"""

CANCEL = _COMMON + """
release(KEYS[1], KEYS[2], ARGV[1])
return 1
"""


class RedisHoldStore:
    def __init__(self, url: str, prefix: str = "gw") -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix
        self._place = self.client.register_script(PLACE)
        self._publish = self.client.register_script(PUBLISH)
        self._reconcile = self.client.register_script(RECONCILE)
        self._cancel = self.client.register_script(CANCEL)

    def _keys(self, account_id: str) -> list[str]:
        return [f"{self.prefix}:bal:{account_id}", f"{self.prefix}:holds:{account_id}"]

    def place(self, account_id: str, hold_id: str, amount: int, now_epoch: int,
              worker_id: str = "") -> HoldOutcome:
        try:
            status, a, b, c = self._place(keys=self._keys(account_id),
                                          args=[hold_id, amount, now_epoch, worker_id])
        except redis.RedisError as error:
            raise HoldStoreUnavailable(str(error)) from None
        if status == -1:
            return HoldOutcome("unknown_account")
        if status == 0:
            return HoldOutcome("insufficient", available=int(a))
        if status == 2:
            return HoldOutcome("duplicate")
        return HoldOutcome("reserved", reserved_by_pool={"trial": int(a), "allowance": int(b),
                                                         "purchased": int(c)})

    def cancel(self, account_id: str, hold_id: str) -> None:
        try:
            self._cancel(keys=self._keys(account_id), args=[hold_id])
        except redis.RedisError as error:
            raise HoldStoreUnavailable(str(error)) from None

    @staticmethod
    def _snapshot_args(snapshot: BalanceSnapshot) -> list:
        return [snapshot.version, snapshot.pools["trial"], snapshot.pools["allowance"],
                snapshot.pools["purchased"], snapshot.trial_ends_epoch,
                1 if snapshot.allowance_active else 0]

    def publish(self, account_id: str, snapshot: BalanceSnapshot,
                released_holds: list[str]) -> None:
        self._publish(keys=self._keys(account_id),
                      args=self._snapshot_args(snapshot) + list(released_holds))

    def reconcile(self, account_id: str, snapshot: BalanceSnapshot, release: list[str],
                  add: dict[str, dict[str, int]]) -> None:
        quads: list = []
        for hold_id, parts in add.items():
            quads += [hold_id, parts["trial"], parts["allowance"], parts["purchased"]]
        try:
            self._reconcile(keys=self._keys(account_id),
                            args=self._snapshot_args(snapshot) + [len(release), *release,
                                                                  *quads])
        except redis.RedisError as error:
            raise HoldStoreUnavailable(str(error)) from None

    def forget_idle(self) -> None:
        """Nothing to forget: every projector publishes into this shared store itself."""

    def available(self, account_id: str, now_epoch: int) -> int | None:
        status, free, _, _ = self._place(keys=self._keys(account_id),
                                         args=["", 0, now_epoch, "", "probe"])
        return None if status == -1 else int(free)

    def cached_holds(self, account_id: str) -> dict[str, CachedHold]:
        found = {}
        for hold_id, value in self.client.hgetall(self._keys(account_id)[1]).items():
            parts = value.decode().split(",")
            if len(parts) < 3:
                continue
            placed = int(parts[3]) if len(parts) > 3 and parts[3] else 0
            worker = parts[4] if len(parts) > 4 else ""
            found[hold_id.decode()] = CachedHold(
                {"trial": int(parts[0]), "allowance": int(parts[1]),
                 "purchased": int(parts[2])}, placed, worker)
        return found

    def accounts(self) -> list[str]:
        """Accounts with reservations (Redis drops a hash with its last field), by SCAN."""
        prefix = f"{self.prefix}:holds:"
        return sorted(key.decode()[len(prefix):]
                      for key in self.client.scan_iter(f"{prefix}*", count=500))

    def flush(self) -> None:
        """Test helper: forget this prefix's keys."""
        for key in self.client.scan_iter(f"{self.prefix}:*"):
            self.client.delete(key)
