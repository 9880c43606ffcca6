"""The ``Breakers`` facade (spec 3.3 "a breaker error never blocks routing"): falls back to
the in-process store when the shared one raises, retries it at most once a second, never raises
itself, and hands every transition to its listener whatever the listener does."""

from __future__ import annotations

import logging

import pytest

from adapters.breaker_memory import MemoryBreakerStore
from application.breakers import Breakers, BreakerStoreUnavailable
from domain.circuit_breaker import CLOSED, HALF_OPEN, OPEN, Admission, Transition

T0 = 1_700_000_000.0
A, B = "p:openai", "pm:openai|openai/gpt-4o"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Flaky(MemoryBreakerStore):
    """A memory store that raises every call while ``down``; counts the calls it saw."""

    backend = "redis"

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.down = False
        self.calls = 0
        self.error = error or BreakerStoreUnavailable("connection refused")

    def _gate(self) -> None:
        self.calls += 1
        if self.down:
            raise self.error

    def admit(self, key, now):
        self._gate()
        return super().admit(key, now)

    def peek(self, key, now):
        self._gate()
        return super().peek(key, now)

    def record(self, key, success, now):
        self._gate()
        return super().record(key, success, now)

    def reset(self, key, now):
        self._gate()
        return super().reset(key, now)

    def views(self, now):
        self._gate()
        return super().views(now)


class Broken:
    backend = "broken"

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise RuntimeError(f"{name} exploded")
        return fail


def facade(primary=None, fallback=None, **kwargs) -> tuple[Breakers, Clock, list[Transition]]:
    clock, seen = Clock(), []
    fallback = MemoryBreakerStore() if fallback is None else fallback  # empty store is falsy
    breakers = Breakers(primary, fallback, seen.append, clock, **kwargs)
    return breakers, clock, seen


def test_embedded_uses_the_memory_store_and_is_never_in_fallback():
    breakers = Breakers.embedded()
    for _ in range(5):
        breakers.record(A, False)
    assert not breakers.admit(A).allowed and not breakers.fallback_active


def test_transitions_reach_the_listener_from_record_admit_and_reset():
    breakers, clock, seen = facade(Flaky())
    for _ in range(5):
        breakers.record(A, False)
    clock.now += 60
    assert breakers.admit(A).state == HALF_OPEN
    breakers.record(A, False)
    assert breakers.reset(A) == Transition(A, OPEN, CLOSED, T0 + 60, "reset")
    assert [(t.from_state, t.to_state, t.reason) for t in seen] == [
        (CLOSED, OPEN, "consecutive_failures"), (OPEN, HALF_OPEN, "half_open_timeout"),
        (HALF_OPEN, OPEN, "probe_failed"), (OPEN, CLOSED, "reset")]


@pytest.mark.parametrize("error", [BreakerStoreUnavailable("down"), RuntimeError("bug")])
def test_a_raising_primary_sends_calls_to_the_fallback(error, caplog):
    primary, fallback = Flaky(error), MemoryBreakerStore()
    breakers, clock, seen = facade(primary, fallback)
    primary.down = True
    with caplog.at_level(logging.WARNING, "gatewayz.breakers"):
        for _ in range(5):
            breakers.record(A, False)
    assert breakers.fallback_active
    assert not breakers.admit(A).allowed  # the in-process store opened it
    assert fallback.peek(A, clock.now).state == OPEN
    assert [t.reason for t in seen] == ["consecutive_failures"]
    assert breakers.views()[0].key == A
    assert caplog.records  # the switch is logged


def test_while_down_the_primary_is_tried_at_most_once_a_second_then_resumed():
    primary = Flaky()
    breakers, clock, _ = facade(primary)
    primary.down = True
    breakers.peek(A)
    assert primary.calls == 1
    for _ in range(50):
        breakers.peek(A)
        clock.now += 0.01
    assert primary.calls == 1  # 0.5 s later: not retried yet
    clock.now += 0.51
    breakers.peek(A)
    breakers.peek(A)
    assert primary.calls == 2  # one probe per interval, the next call stays local
    primary.down = False
    clock.now += 1
    assert breakers.admit(A).allowed
    assert not breakers.fallback_active and primary.calls == 3
    breakers.peek(A)
    assert primary.calls == 4


def test_when_both_stores_fail_routing_goes_on():
    breakers, _, seen = facade(Broken(), Broken())
    assert breakers.admit(A) == Admission(True, CLOSED, None)
    assert breakers.peek(A).allowed
    assert breakers.admit_all([A, B]).allowed
    assert breakers.record(A, False) is None
    assert breakers.reset(A) is None
    assert breakers.views() == []
    assert seen == []


def test_a_broken_clock_or_listener_does_not_raise():
    def no_clock() -> float:
        raise OSError("clock")

    assert Breakers(None, MemoryBreakerStore(), clock=no_clock).admit(A).allowed
    assert Breakers(None, MemoryBreakerStore(), clock=no_clock).reset(A) is None

    def explode(transition: Transition) -> None:
        raise RuntimeError("event store down")

    clock = Clock()
    breakers = Breakers(None, MemoryBreakerStore(), explode, clock)
    results = [breakers.record(A, False) for _ in range(5)]
    assert results[-1].to_state == OPEN and not breakers.peek(A).allowed


def test_reset_clears_both_stores_and_reports_the_shared_one():
    primary, fallback = Flaky(), MemoryBreakerStore()
    breakers, clock, seen = facade(primary, fallback)
    for _ in range(5):
        breakers.record(A, False)
    for _ in range(5):
        fallback.record(A, False, clock.now)  # a copy left from an earlier Redis outage
    assert breakers.reset(A).from_state == OPEN
    assert fallback.peek(A, clock.now).state == CLOSED and primary.peek(A, clock.now).allowed
    primary.down = True
    for _ in range(5):
        fallback.record(B, False, clock.now)
    assert breakers.reset(B) == Transition(B, OPEN, CLOSED, T0, "reset")
    assert breakers.fallback_active


def test_admit_all_does_not_take_a_probe_slot_when_the_other_breaker_refuses():
    breakers, clock, _ = facade(MemoryBreakerStore())
    for _ in range(5):
        breakers.record(A, False)
    clock.now += 30
    for _ in range(5):
        breakers.record(B, False)
    clock.now += 30  # A is due half-open, B still open for 30 s
    refused = breakers.admit_all([A, B])
    assert refused == Admission(False, OPEN, T0 + 90)
    assert breakers.peek(A) == Admission(True, HALF_OPEN, None)  # slot still free
    clock.now += 30
    assert breakers.admit_all([A, B]).allowed
    assert not breakers.peek(A).allowed and not breakers.peek(B).allowed  # both probes out
    assert breakers.admit_all([]).allowed
