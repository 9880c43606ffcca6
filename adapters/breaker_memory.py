"""In-process breaker store (spec 3.3): the only store without Redis, the fallback with it.

State is per worker. Memory is bounded: at most ``max_keys`` breakers, least recently written
first out, and a breaker not written for ``policy.idle_ttl_s`` is forgotten, as its Redis hash
expires. Decisions are the pure rules of ``domain.circuit_breaker``, which the Lua script of
the Redis store mirrors.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from domain import circuit_breaker as cb
from domain.circuit_breaker import Admission, BreakerPolicy, BreakerState, BreakerView, Transition


class MemoryBreakerStore:
    backend = "memory"

    def __init__(self, policy: BreakerPolicy | None = None, max_keys: int = 10_000) -> None:
        self.policy = policy or BreakerPolicy()
        self.max_keys = max_keys
        # The event loop is single-threaded, but admin handlers may run in threads.
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, BreakerState]] = OrderedDict()  # by write

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: str, now: float) -> BreakerState:
        entry = self._entries.get(key)
        if entry is None:
            return cb.NEW
        written, state = entry
        if now - written >= self.policy.idle_ttl_s:
            del self._entries[key]
            return cb.NEW
        return state

    def _put(self, key: str, before: BreakerState, after: BreakerState, now: float) -> None:
        # Only a changed state is a write: like the Redis hash, reading never extends its life.
        if after is before:
            return
        if after == cb.NEW:
            self._entries.pop(key, None)  # Redis deletes the hash: same lifetime here
            return
        self._entries[key] = (now, after)
        self._entries.move_to_end(key)
        horizon = now - self.policy.idle_ttl_s
        while self._entries:
            oldest_key, (written, _) = next(iter(self._entries.items()))
            if written > horizon and len(self._entries) <= self.max_keys:
                break
            del self._entries[oldest_key]

    def state(self, key: str, now: float) -> BreakerState:
        """The stored record (tests compare it field by field with the Redis hash)."""
        with self._lock:
            return self._get(key, float(now))

    def admit(self, key: str, now: float) -> Admission:
        now = float(now)
        with self._lock:
            state = self._get(key, now)
            after, admission = cb.admit(key, state, now, self.policy)
            self._put(key, state, after, now)
        return admission

    def peek(self, key: str, now: float) -> Admission:
        now = float(now)
        with self._lock:
            return cb.peek(key, self._get(key, now), now, self.policy)

    def record(self, key: str, success: bool, now: float) -> Transition | None:
        now = float(now)
        with self._lock:
            state = self._get(key, now)
            after, transition = cb.record(key, state, success, now, self.policy)
            self._put(key, state, after, now)
        return transition

    def reset(self, key: str, now: float) -> Transition | None:
        now = float(now)
        with self._lock:
            state = self._get(key, now)
            self._entries.pop(key, None)
        return cb.reset(key, state, now)[1]

    def views(self, now: float) -> list[BreakerView]:
        now = float(now)
        with self._lock:
            live = [(key, state) for key, (written, state) in self._entries.items()
                    if now - written < self.policy.idle_ttl_s]
        return sorted((cb.view(key, state, now, self.policy) for key, state in live),
                      key=lambda v: v.key)

    def close(self) -> None:
        return None
