"""Circuit breakers (spec 3.3): the pure state machine; no I/O, no clock reads.

A request needs two breakers to admit it: one for its provider (``provider_key``) and one for
its (provider, model) pair (``model_key``); each is an independent ``BreakerState`` under its
own key, so one provider's breaker never touches another's.

Both stores decide with these functions: the in-process store calls them directly and the Redis
Lua script (adapters/breaker_redis.py) mirrors them line by line, so a worker that falls back
from Redis keeps the same rules. Time is float seconds passed in by the caller. Every float the
rules compare is computed with the same IEEE operations in both (``opened_at + open_s``,
``floor((now - window_s) / bucket_s)``), so the two stores agree exactly, not approximately.

Transitions chain: each one starts from the state the previous one ended in. An open breaker
whose 60 s have passed *behaves* half-open for ``peek`` and views, but only an ``admit`` (which
takes the probe slot) records the ``open -> half_open`` transition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATES = (CLOSED, OPEN, HALF_OPEN)


def provider_key(provider: str) -> str:
    return f"p:{provider}"


def model_key(provider: str, model: str) -> str:
    return f"pm:{provider}|{model}"


@dataclass(frozen=True)
class BreakerPolicy:
    consecutive_failures: int = 5
    window_s: float = 60
    window_min_requests: int = 10
    window_failure_ratio: float = 0.5
    open_s: float = 60
    half_open_successes: int = 2
    # The 60 s window is kept as counters per bucket: bounded memory (13 buckets) whatever the
    # traffic. Every bucket overlapping the last window_s counts, so the window reaches back
    # between window_s and window_s + bucket_s: a failure inside the last 60 s is never missed.
    bucket_s: float = 5
    # A breaker nobody has written for this long is forgotten (Redis key TTL, memory eviction);
    # by then it would be closed or half-open anyway.
    idle_ttl_s: float = 3600

    def __post_init__(self) -> None:
        if min(self.consecutive_failures, self.window_min_requests,
               self.half_open_successes) < 1:
            raise ValueError("breaker counts must be at least 1")
        if min(self.window_s, self.open_s, self.bucket_s) <= 0:
            raise ValueError("breaker durations must be positive")
        if not 0 < self.window_failure_ratio <= 1:
            raise ValueError("window_failure_ratio must be in (0, 1]")
        if self.idle_ttl_s < self.open_s + self.window_s + self.bucket_s:
            raise ValueError("idle_ttl_s must outlast an open period and a window")

    def bucket(self, now: float) -> int:
        return math.floor(now / self.bucket_s)

    def lowest_bucket(self, now: float) -> int:
        """The bucket holding ``now - window_s``: the oldest one still in the window."""
        return math.floor((now - self.window_s) / self.bucket_s)


@dataclass(frozen=True)
class Transition:
    key: str
    from_state: str
    to_state: str
    at: float
    reason: str  # consecutive_failures, failure_ratio, half_open_timeout, probe_succeeded,
    #              probe_failed, reset


@dataclass(frozen=True)
class Admission:
    allowed: bool
    state: str
    # Open: when it goes half-open. Half-open with the probe out: when the probe's lease ends
    # (the latest the slot can free). Otherwise None.
    retry_at: float | None
    transition: Transition | None = None  # open -> half_open, taken by this admit


@dataclass(frozen=True)
class BreakerView:
    key: str
    state: str
    consecutive_failures: int
    window_requests: int
    window_failures: int
    opened_at: float | None
    retry_at: float | None
    probe_until: float | None = None


@dataclass(frozen=True)
class BreakerState:
    """What a store keeps per key. The default value is a new (or reset) closed breaker."""

    state: str = CLOSED
    consecutive_failures: int = 0
    half_open_successes: int = 0
    opened_at: float | None = None
    probe_until: float | None = None  # lease of the admitted half-open probe
    buckets: tuple[tuple[int, int, int], ...] = ()  # (bucket id, requests, failures), by id


NEW = BreakerState()


def window(state: BreakerState, now: float, policy: BreakerPolicy) -> tuple[int, int]:
    """(requests, failures) recorded while closed in the buckets covering the last window."""
    lo, hi = policy.lowest_bucket(now), policy.bucket(now)
    requests = failures = 0
    for bucket, r, f in state.buckets:
        if lo <= bucket <= hi:
            requests += r
            failures += f
    return requests, failures


def peek(key: str, state: BreakerState, now: float, policy: BreakerPolicy) -> Admission:
    """Would a request be let through now? Changes nothing (candidate ordering, views)."""
    if state.state == CLOSED:
        return Admission(True, CLOSED, None)
    if state.state == OPEN:
        assert state.opened_at is not None
        half_open_at = state.opened_at + policy.open_s
        if now < half_open_at:
            return Admission(False, OPEN, half_open_at)
        return Admission(True, HALF_OPEN, None)
    if state.probe_until is not None and now < state.probe_until:
        return Admission(False, HALF_OPEN, state.probe_until)
    return Admission(True, HALF_OPEN, None)


def admit(key: str, state: BreakerState, now: float,
          policy: BreakerPolicy) -> tuple[BreakerState, Admission]:
    """Let a request through or not; a half-open breaker lends its single probe slot."""
    seen = peek(key, state, now, policy)
    if not seen.allowed or seen.state == CLOSED:
        return state, seen
    transition = None
    if state.state == OPEN:
        assert state.opened_at is not None
        # Stamped when the timer ran out, not when someone noticed: the event log shows the
        # moment the breaker became half-open by rule.
        transition = Transition(key, OPEN, HALF_OPEN, state.opened_at + policy.open_s,
                                "half_open_timeout")
        state = replace(state, state=HALF_OPEN, half_open_successes=0)
    # The lease frees the slot if the probe's outcome is never recorded (worker died).
    return replace(state, probe_until=now + policy.open_s), Admission(True, HALF_OPEN, None,
                                                                      transition)


def _counted(state: BreakerState, now: float, success: bool,
             policy: BreakerPolicy) -> tuple[tuple[int, int, int], ...]:
    """The buckets with this outcome added and every bucket outside the window dropped."""
    lo, hi = policy.lowest_bucket(now), policy.bucket(now)
    kept = {b: (r, f) for b, r, f in state.buckets if lo <= b <= hi}
    r, f = kept.get(hi, (0, 0))
    kept[hi] = (r + 1, f + (0 if success else 1))
    return tuple((b, r, f) for b, (r, f) in sorted(kept.items()))


def record(key: str, state: BreakerState, success: bool, now: float,
           policy: BreakerPolicy) -> tuple[BreakerState, Transition | None]:
    """Count one outcome; the caller passes every failover-eligible outcome as a failure."""
    if state.state == OPEN:
        # No probe has been admitted since it opened, so this is a request admitted before:
        # its outcome says nothing new and must not restart or end the open period.
        return state, None
    if state.state == HALF_OPEN:
        if success:
            successes = state.half_open_successes + 1
            if successes >= policy.half_open_successes:
                return NEW, Transition(key, HALF_OPEN, CLOSED, now, "probe_succeeded")
            # The probe came back: free the slot for the next one.
            return replace(state, half_open_successes=successes, consecutive_failures=0,
                           probe_until=None), None
        return (replace(state, state=OPEN, consecutive_failures=state.consecutive_failures + 1,
                        half_open_successes=0, opened_at=now, probe_until=None),
                Transition(key, HALF_OPEN, OPEN, now, "probe_failed"))
    failures_in_a_row = 0 if success else state.consecutive_failures + 1
    counted = replace(state, consecutive_failures=failures_in_a_row,
                      buckets=_counted(state, now, success, policy))
    # The ratio is checked after a success too: the success that makes the window reach 10
    # requests, 6 of them failures, must open it (the rule is a condition, not an event).
    requests, failures = window(counted, now, policy)
    if failures_in_a_row >= policy.consecutive_failures:
        reason = "consecutive_failures"
    elif (requests >= policy.window_min_requests
          and failures >= policy.window_failure_ratio * requests):
        reason = "failure_ratio"
    else:
        return counted, None
    return (replace(counted, state=OPEN, half_open_successes=0, opened_at=now,
                    probe_until=None),
            Transition(key, CLOSED, OPEN, now, reason))


def reset(key: str, state: BreakerState, now: float) -> tuple[BreakerState, Transition | None]:
    """Admin reset: closed with every counter cleared; a transition unless already closed.

    ``from_state`` is the stored state (an expired open breaker is still ``open`` here), so
    the transitions a key emits always chain."""
    if state.state == CLOSED:
        return NEW, None
    return NEW, Transition(key, state.state, CLOSED, now, "reset")


def view(key: str, state: BreakerState, now: float, policy: BreakerPolicy) -> BreakerView:
    seen = peek(key, state, now, policy)
    requests, failures = window(state, now, policy)
    return BreakerView(key, seen.state, state.consecutive_failures, requests, failures,
                       state.opened_at if state.state != CLOSED else None, seen.retry_at,
                       state.probe_until if seen.state == HALF_OPEN and not seen.allowed
                       else None)
