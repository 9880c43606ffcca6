"""In-process rate-limit store (spec 1.12): the embedded limiter and the Redis fallback.

Each worker counts alone here, so every limit is divided by the configured worker count and
the workers together stay near the shared bound. Memory is bounded: at most ``max_keys``
tracked subjects (keys, IPs, anonymous subjects) in LRU order, each forgotten after
``idle_s`` without use. Decisions use the pure rules of ``domain.rate_limits``, the same
ones the Redis script mirrors.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.rate_limit_headers import Window
from domain.rate_limits import (
    DAY,
    HOUR,
    IP_PER_MINUTE,
    LEASE_TTL_S,
    MINUTE,
    US,
    KeyCounts,
    Lease,
    LimitProfile,
    Verdict,
    anonymous_verdict,
    decide_key,
    key_verdict,
    share,
    sliding_window,
    window_id,
    window_verdict,
)

# Window slots of a key: (name in KeyState.counts, length in seconds).
_REQUEST_WINDOWS = (("h", HOUR), ("d", DAY))
_TOKEN_WINDOWS = (("tm", MINUTE), ("th", HOUR), ("td", DAY))


@dataclass
class _KeyState:
    tat_us: int | None = None
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # slot -> (window, n)
    leases: dict[str, int] = field(default_factory=dict)  # lease id -> expiry (us)

    def used(self, slot: str, seconds: int, now_us: int) -> int:
        wid, n = self.counts.get(slot, (-1, 0))
        return n if wid == window_id(now_us, seconds) else 0

    def add(self, slot: str, seconds: int, now_us: int, n: int) -> None:
        self.counts[slot] = (window_id(now_us, seconds), self.used(slot, seconds, now_us) + n)

    def snapshot(self, now_us: int) -> KeyCounts:
        return KeyCounts(*(self.used(slot, sec, now_us)
                           for slot, sec in (*_REQUEST_WINDOWS, *_TOKEN_WINDOWS)))


class MemoryRateLimitStore:
    backend = "memory"

    def __init__(self, workers: int = 1, max_keys: int = 10_000, idle_s: float = 900,
                 lease_ttl_s: float = LEASE_TTL_S,
                 clock_us: Callable[[], int] = lambda: time.time_ns() // 1000) -> None:
        self.workers = max(1, workers)
        self.max_keys = max_keys
        self.idle_s = idle_s
        self.lease_ttl_us = int(lease_ttl_s * US)
        self._clock_us = clock_us  # wall time in integer us: UTC windows, exact GCRA sums
        # A lock although the event loop is single-threaded: admin threads may share it.
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, list] = OrderedDict()  # name -> [last_seen, state]

    def __len__(self) -> int:
        return len(self._entries)

    def _now_us(self) -> int:
        return self._clock_us()

    def _entry(self, name: str, factory: Callable[[], object], now_us: int) -> object:
        """Get or create a subject's state, most recently used last, idle ones dropped."""
        horizon = now_us - int(self.idle_s * US)
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest[0] >= horizon:
                break
            self._entries.popitem(last=False)
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = [now_us, factory()]
            while len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)
        else:
            entry[0] = now_us
            self._entries.move_to_end(name)
        return entry[1]

    def tracked(self, name: str) -> bool:
        """Whether a subject (``key:<id>``, ``ip:<ip>``, ``anon:<subject>``) is held."""
        return name in self._entries

    # --- layer 1 ---------------------------------------------------------------------------

    def _ip_times(self, subject: str, now_us: int) -> deque[int]:
        times = self._entry(f"ip:{subject}", deque, now_us)
        assert isinstance(times, deque)
        while times and times[0] <= now_us - MINUTE * US:
            times.popleft()
        return times

    def _ip_window(self, times: deque[int], limit: int, now_us: int) -> tuple[bool, int, Window]:
        n = len(times)
        return sliding_window(limit, now_us, n, times[-1] if n else 0,
                              times[n - limit] if n >= limit else 0)

    async def check_ip(self, subject: str, limit: int) -> Verdict:
        limit = share(limit, self.workers)
        with self._lock:
            now = self._now_us()
            allowed, wait, window = self._ip_window(self._ip_times(subject, now), limit, now)
        return window_verdict("ip", window, allowed, wait)

    async def count_ip(self, subject: str, limit: int) -> Verdict:
        limit = share(limit, self.workers)
        with self._lock:
            now = self._now_us()
            times = self._ip_times(subject, now)
            times.append(now)
            # Only the newest entries can decide anything: memory per IP stays bounded.
            while len(times) > max(limit, IP_PER_MINUTE):
                times.popleft()
            _, wait, window = self._ip_window(times, limit, now)
        return window_verdict("ip", window, True, wait)

    # --- layer 3 ---------------------------------------------------------------------------

    async def admit_anonymous(self, subject: str, limit: int) -> Verdict:
        limit = share(limit, self.workers)
        with self._lock:
            now = self._now_us()
            state = self._entry(f"anon:{subject}", lambda: [-1, 0], now)
            assert isinstance(state, list)
            day = window_id(now, DAY)
            used = state[1] if state[0] == day else 0
            allowed = used < limit
            if allowed:
                state[0], state[1] = day, used + 1
                used += 1
        return anonymous_verdict(limit, now, used, allowed)

    # --- layer 2 ---------------------------------------------------------------------------

    def _key(self, key_id: str, now_us: int) -> _KeyState:
        state = self._entry(f"key:{key_id}", _KeyState, now_us)
        assert isinstance(state, _KeyState)
        return state

    async def admit_key(self, key_id: str, profile: LimitProfile, lease_id: str) -> Verdict:
        if self.workers > 1:
            profile = profile.divided(self.workers)
        with self._lock:
            now = self._now_us()
            state = self._key(key_id, now)
            for lid, expiry in list(state.leases.items()):
                if expiry <= now:  # a lease its worker never released
                    del state.leases[lid]
            decision = decide_key(profile, now, state.tat_us, state.snapshot(now),
                                  len(state.leases))
            lease = None
            if decision.code is None:
                state.tat_us = decision.tat_us
                for slot, seconds in _REQUEST_WINDOWS:
                    state.add(slot, seconds, now, 1)
                state.leases[lease_id] = now + self.lease_ttl_us
                lease = Lease(key_id, lease_id, self.backend)
            counts = state.snapshot(now)
        return key_verdict(profile, now, decision, counts, lease)

    async def add_tokens(self, key_id: str, tokens: int) -> None:
        with self._lock:
            now = self._now_us()
            state = self._key(key_id, now)
            for slot, seconds in _TOKEN_WINDOWS:
                state.add(slot, seconds, now, tokens)

    async def release(self, lease: Lease) -> None:
        with self._lock:
            entry = self._entries.get(f"key:{lease.key_id}")
            if entry is not None:
                entry[1].leases.pop(lease.lease_id, None)

    def open_leases(self, key_id: str) -> int:
        entry = self._entries.get(f"key:{key_id}")
        return len(entry[1].leases) if entry is not None else 0

    async def close(self) -> None:
        return None
