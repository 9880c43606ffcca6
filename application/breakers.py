"""Circuit breakers and passive health for routing (spec 3.2, 3.3, 2.7): the store port, the
never-raising ``Breakers`` facade and the in-process ``HealthBoard``.

A breaker error must never block routing (3.3): any error from the Redis store sends that one
call to the in-process store, and while Redis stays down at most one call every
``retry_interval_s`` tries it again (as ``RateLimiter`` does). If even the in-process store
fails, ``admit``/``peek`` let the request through and the rest answer "nothing happened".
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from domain.circuit_breaker import CLOSED, Admission, BreakerPolicy, BreakerView, Transition
from domain.provider_health import HealthPolicy, HealthView, ProviderHealth

log = logging.getLogger("gatewayz.breakers")

T = TypeVar("T")
_OPEN_DOOR = Admission(True, CLOSED, None)  # what a broken breaker answers: let it through


class BreakerStoreUnavailable(Exception):
    """The shared store cannot answer now; the caller falls back, never refuses."""


class BreakerStore(Protocol):
    """Each method is one atomic decision for one breaker key at the caller's time ``now``."""

    backend: str

    def admit(self, key: str, now: float) -> Admission: ...  # may take the half-open probe
    def peek(self, key: str, now: float) -> Admission: ...  # read-only
    def record(self, key: str, success: bool, now: float) -> Transition | None: ...
    def reset(self, key: str, now: float) -> Transition | None: ...
    def views(self, now: float) -> list[BreakerView]: ...


class Breakers:
    """What routing and the admin routes call; no method raises."""

    def __init__(self, primary: BreakerStore | None, fallback: BreakerStore,
                 on_transition: Callable[[Transition], None] | None = None,
                 clock: Callable[[], float] = time.time, *,
                 retry_interval_s: float = 1.0) -> None:
        self._primary = primary
        self._fallback = fallback
        self._on_transition = on_transition
        self._clock = clock
        self._retry_interval_s = retry_interval_s
        self._fallback_since: float | None = None
        self._next_probe = 0.0

    @classmethod
    def embedded(cls, policy: BreakerPolicy | None = None, **kwargs) -> Breakers:
        """No Redis configured: per-worker state only (never reported as 'fallback')."""
        from adapters.breaker_memory import MemoryBreakerStore

        return cls(None, MemoryBreakerStore(policy), **kwargs)

    @classmethod
    def with_redis(cls, url: str, prefix: str = "gw", policy: BreakerPolicy | None = None,
                   **kwargs) -> Breakers:
        from adapters.breaker_memory import MemoryBreakerStore
        from adapters.breaker_redis import RedisBreakerStore

        return cls(RedisBreakerStore(url, prefix, policy), MemoryBreakerStore(policy), **kwargs)

    @property
    def fallback_active(self) -> bool:
        """True while Redis is configured but the in-process store answers."""
        return self._fallback_since is not None

    # --- routing --------------------------------------------------------------------------

    def admit(self, key: str) -> Admission:
        admission = self._run(lambda s, now: s.admit(key, now), _OPEN_DOOR)
        self._emit(admission.transition)
        return admission

    def peek(self, key: str) -> Admission:
        return self._run(lambda s, now: s.peek(key, now), _OPEN_DOOR)

    def admit_all(self, keys: Iterable[str]) -> Admission:
        """Admit one request through several breakers (provider, then provider+model).

        Peeks all first, so a request refused by the second breaker does not take (and
        hold, until its lease ends) the first one's half-open probe slot. Returns the first
        refusal, else the last admission."""
        keys = list(keys)
        for key in keys:
            seen = self.peek(key)
            if not seen.allowed:
                return seen
        admission = _OPEN_DOOR
        for key in keys:
            admission = self.admit(key)
            if not admission.allowed:
                return admission
        return admission

    def record(self, key: str, success: bool) -> Transition | None:
        transition = self._run(lambda s, now: s.record(key, success, now), None)
        self._emit(transition)
        return transition

    # --- admin ----------------------------------------------------------------------------

    def reset(self, key: str) -> Transition | None:
        """Reset in both stores, Redis tried even during a fallback (a rare admin call): an
        in-process copy left open would come back the next time Redis fails."""
        try:
            now = self._clock()
        except Exception:  # noqa: BLE001
            log.exception("breakers: clock failed")
            return None
        shared, shared_ok = None, False
        if self._primary is not None:
            try:
                shared, shared_ok = self._primary.reset(key, now), True
            except Exception as error:  # noqa: BLE001 - never raise to the admin route
                self._enter_fallback(error, now)
        try:
            local = self._fallback.reset(key, now)
        except Exception:  # noqa: BLE001
            log.exception("breakers: in-process reset failed for %s", key)
            local = None
        # The transition reported is that of the breaker routing actually consults.
        transition = shared if shared_ok else local
        self._emit(transition)
        return transition

    def views(self) -> list[BreakerView]:
        return self._run(lambda s, now: s.views(now), [])

    # --- store selection ------------------------------------------------------------------

    def _may_try_primary(self, now: float) -> bool:
        if self._primary is None:
            return False
        if self._fallback_since is None:
            return True
        if now < self._next_probe:
            return False
        self._next_probe = now + self._retry_interval_s  # one probe per interval
        return True

    def _run(self, call: Callable[[BreakerStore, float], T], default: T) -> T:
        try:
            now = self._clock()
        except Exception:  # noqa: BLE001 - a broken clock must not block routing either
            log.exception("breakers: clock failed")
            return default
        if self._primary is not None and self._may_try_primary(now):
            try:
                result = call(self._primary, now)
            except Exception as error:  # noqa: BLE001 - never fail closed (3.3)
                self._enter_fallback(error, now)
            else:
                if self._fallback_since is not None:
                    log.warning("breakers: back on Redis after %.1f s", now - self._fallback_since)
                    self._fallback_since = None
                return result
        try:
            return call(self._fallback, now)
        except Exception:  # noqa: BLE001
            log.exception("breakers: in-process store failed; letting traffic through")
            return default

    def _enter_fallback(self, error: BaseException, now: float) -> None:
        if self._fallback_since is None:
            if isinstance(error, BreakerStoreUnavailable):
                log.warning("breakers: Redis unavailable, in-process fallback: %s", error)
            else:
                log.error("breakers: unexpected Redis store error, in-process fallback",
                          exc_info=error)
            self._fallback_since = now
        self._next_probe = now + self._retry_interval_s

    def _emit(self, transition: Transition | None) -> None:
        if transition is None or self._on_transition is None:
            return
        try:
            self._on_transition(transition)
        except Exception:  # noqa: BLE001 - an event or metric sink never breaks routing
            log.exception("breakers: transition listener failed for %s", transition.key)


class HealthBoard:
    """One ``ProviderHealth`` per (provider, model), in process, fed by passive capture.

    Bounded: at most ``max_keys`` pairs; the least recently *updated* one goes first (reads do
    not keep a pair alive: a pair nobody calls any more has nothing current to say)."""

    def __init__(self, policy: HealthPolicy | None = None, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.policy = policy or HealthPolicy()
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._pairs: OrderedDict[tuple[str, str], ProviderHealth] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pairs)

    def record(self, provider: str, model: str, outcome: str, status: int | None,
               ttfb_ms: float | None, total_ms: float | None,
               now: float | None = None) -> HealthView:
        now = self._clock() if now is None else now
        key = (provider, model)
        with self._lock:
            health = self._pairs.get(key)
            if health is None:
                health = self._pairs[key] = ProviderHealth(provider, model, self.policy)
                while len(self._pairs) > self.max_keys:
                    self._pairs.popitem(last=False)
            else:
                self._pairs.move_to_end(key)
            health.record(outcome, status, ttfb_ms, total_ms, now)
            return health.view(now)

    def view(self, provider: str, model: str, now: float | None = None) -> HealthView | None:
        """None: no record yet for this pair (routing treats it as healthy)."""
        now = self._clock() if now is None else now
        with self._lock:
            health = self._pairs.get((provider, model))
            return None if health is None else health.view(now)

    def views(self, now: float | None = None) -> list[HealthView]:
        now = self._clock() if now is None else now
        with self._lock:
            return [health.view(now) for health in self._pairs.values()]
