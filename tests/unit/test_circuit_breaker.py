"""Circuit breakers (spec 3.3): every Accept line, on the pure rules through the in-process
store, plus the probe lease, late outcomes, the window edges, reset and the memory bound."""

from __future__ import annotations

import pytest

from adapters.breaker_memory import MemoryBreakerStore
from domain import circuit_breaker as cb
from domain.circuit_breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Admission,
    BreakerPolicy,
    Transition,
    model_key,
    provider_key,
)

T0 = 1_700_000_000.25
A, B = provider_key("openai"), provider_key("anthropic")


def fail(store: MemoryBreakerStore, key: str, n: int, at: float) -> list[Transition | None]:
    return [store.record(key, False, at) for _ in range(n)]


def opened(store: MemoryBreakerStore, key: str = A, at: float = T0) -> None:
    fail(store, key, 5, at)
    assert store.peek(key, at).state == OPEN


def test_keys_name_a_provider_and_a_pair():
    assert provider_key("openai") == "p:openai"
    assert model_key("openai", "openai/gpt-4o") == "pm:openai|openai/gpt-4o"


def test_a_new_breaker_is_closed_and_admits():
    store = MemoryBreakerStore()
    assert store.admit(A, T0) == Admission(True, CLOSED, None)
    assert store.views(T0) == []  # admitting a closed breaker writes nothing
    assert cb.view(A, cb.NEW, T0, BreakerPolicy()).state == CLOSED


def test_four_failures_stay_closed_the_fifth_opens_and_requests_skip_it():
    store = MemoryBreakerStore()
    assert fail(store, A, 4, T0) == [None] * 4
    assert store.admit(A, T0).allowed
    assert store.record(A, False, T0 + 1) == Transition(A, CLOSED, OPEN, T0 + 1,
                                                        "consecutive_failures")
    refused = store.admit(A, T0 + 2)
    assert refused == Admission(False, OPEN, T0 + 61)
    assert store.peek(A, T0 + 60.9).allowed is False


def test_a_success_while_closed_resets_the_consecutive_count():
    store = MemoryBreakerStore()
    for second in range(3):  # 12 failures, never 5 in a row, spread so the ratio rule is idle
        t = T0 + second * 100
        fail(store, A, 4, t)
        assert store.record(A, True, t) is None
        assert store.views(t)[0].consecutive_failures == 0
    assert store.peek(A, T0 + 300).state == CLOSED


def test_at_60_s_half_open_one_probe_at_a_time_the_second_goes_elsewhere():
    store = MemoryBreakerStore()
    opened(store)
    assert not store.admit(A, T0 + 59.999).allowed
    probe = store.admit(A, T0 + 60)
    assert probe.allowed and probe.state == HALF_OPEN
    assert probe.transition == Transition(A, OPEN, HALF_OPEN, T0 + 60, "half_open_timeout")
    second = store.admit(A, T0 + 60.5)
    assert second == Admission(False, HALF_OPEN, T0 + 120)  # the probe's lease end
    assert not store.peek(A, T0 + 61).allowed


def test_peek_never_takes_the_probe_slot():
    store = MemoryBreakerStore()
    opened(store)
    for _ in range(3):
        assert store.peek(A, T0 + 70) == Admission(True, HALF_OPEN, None)
    assert store.views(T0 + 70)[0].state == HALF_OPEN
    assert store.admit(A, T0 + 70).allowed
    assert not store.admit(A, T0 + 70).allowed


def test_two_probe_successes_close_it_with_counters_cleared():
    store = MemoryBreakerStore()
    opened(store)
    assert store.admit(A, T0 + 60).allowed
    assert store.record(A, True, T0 + 61) is None
    assert store.peek(A, T0 + 61) == Admission(True, HALF_OPEN, None)  # slot freed
    assert store.admit(A, T0 + 62).allowed
    assert store.record(A, True, T0 + 63) == Transition(A, HALF_OPEN, CLOSED, T0 + 63,
                                                        "probe_succeeded")
    assert store.admit(A, T0 + 63) == Admission(True, CLOSED, None)
    assert fail(store, A, 4, T0 + 64) == [None] * 4  # consecutive count starts from zero


@pytest.mark.parametrize("successes_first", [0, 1])
def test_a_failure_in_half_open_reopens_with_the_timer_restarted(successes_first):
    store = MemoryBreakerStore()
    opened(store)
    t = T0 + 60
    for _ in range(successes_first):
        assert store.admit(A, t).allowed
        store.record(A, True, t + 1)
        t += 2
    assert store.admit(A, t).allowed
    assert store.record(A, False, t + 5) == Transition(A, HALF_OPEN, OPEN, t + 5, "probe_failed")
    assert store.admit(A, t + 64.9) == Admission(False, OPEN, t + 65)
    again = store.admit(A, t + 65)
    assert again.allowed and again.transition.at == t + 65


@pytest.mark.parametrize("pattern", [
    [False, False, True, False, False, True, False, True, False, True],  # 10th a success
    [True, False, False, True, False, False, True, False, True, False],  # 10th a failure
])
def test_six_failures_out_of_ten_in_60_s_never_five_in_a_row_open(pattern):
    store = MemoryBreakerStore()
    results = [store.record(A, ok, T0 + 5 * i) for i, ok in enumerate(pattern)]
    assert results[:-1] == [None] * 9  # 6 of 9 is below the 10-request floor
    assert results[-1] == Transition(A, CLOSED, OPEN, T0 + 45, "failure_ratio")
    assert not store.admit(A, T0 + 46).allowed


def test_four_failures_out_of_ten_stay_closed():
    store = MemoryBreakerStore()
    pattern = [True, False, True, False, True, False, True, False, True, True]
    assert [store.record(A, ok, T0 + i) for i, ok in enumerate(pattern)] == [None] * 10
    assert store.record(A, False, T0 + 10) is None  # 5 of 11: below half
    assert store.record(A, False, T0 + 11) == Transition(A, CLOSED, OPEN, T0 + 11,
                                                         "failure_ratio")


@pytest.mark.parametrize(("later", "opens"), [(59.9, True), (64.0, True), (65.8, False)])
def test_outcomes_leave_the_window_after_60_to_65_s(later, opens):
    """Buckets of 5 s: an outcome counts while its bucket overlaps the last 60 s."""
    store = MemoryBreakerStore()
    for ok in [False, False, True, False, False, True, False, True, False]:  # 6 of 9
        assert store.record(A, ok, T0) is None
    transition = store.record(A, True, T0 + later)  # the 10th request, if the 9 still count
    assert (transition is not None) is opens
    assert store.views(T0 + later)[0].window_requests == (10 if opens else 1)


def test_window_reaches_back_at_least_60_s_and_its_buckets_stay_bounded():
    policy = BreakerPolicy()
    state = cb.NEW
    for i in range(1000):  # one success a second for 1000 s
        state, _ = cb.record(A, state, True, T0 + i, policy)
    assert len(state.buckets) <= 60 / 5 + 1
    requests, _ = cb.window(state, T0 + 999, policy)
    assert 60 <= requests <= 65


def test_breaker_a_open_leaves_b_closed():
    store = MemoryBreakerStore()
    opened(store, A)
    assert store.admit(B, T0) == Admission(True, CLOSED, None)
    assert store.peek(model_key("openai", "gpt-4o"), T0).allowed
    assert {v.key: v.state for v in store.views(T0)} == {A: OPEN}


def test_a_late_outcome_while_open_changes_nothing():
    store = MemoryBreakerStore()
    opened(store)
    assert store.record(A, True, T0 + 10) is None
    assert store.record(A, False, T0 + 30) is None  # does not restart the 60 s
    assert store.admit(A, T0 + 60).allowed


def test_a_lost_probe_frees_its_slot_when_its_lease_ends():
    store = MemoryBreakerStore()
    opened(store)
    assert store.admit(A, T0 + 60).allowed  # the worker running it dies: nothing recorded
    assert not store.admit(A, T0 + 119.9).allowed
    assert store.admit(A, T0 + 120) == Admission(True, HALF_OPEN, None)


def test_reset_closes_and_clears_and_reports_from_the_stored_state():
    store = MemoryBreakerStore()
    opened(store)
    assert store.reset(A, T0 + 1) == Transition(A, OPEN, CLOSED, T0 + 1, "reset")
    assert store.views(T0 + 1) == []
    assert store.reset(A, T0 + 2) is None  # already closed
    assert fail(store, A, 4, T0 + 3) == [None] * 4
    store.admit(A, T0 + 70)
    assert store.reset(A, T0 + 71) is None  # closed with counters: cleared, no transition
    opened(store, A, T0 + 100)
    assert store.reset(A, T0 + 500).from_state == OPEN  # the timer ran out, no probe taken


def test_views_report_counts_times_and_the_probe_lease():
    store = MemoryBreakerStore()
    store.record(A, True, T0)
    opened(store, A, T0 + 1)
    (view,) = store.views(T0 + 2)
    assert (view.state, view.consecutive_failures, view.window_requests,
            view.window_failures, view.opened_at, view.retry_at) == (
        OPEN, 5, 6, 5, T0 + 1, T0 + 61)
    store.admit(A, T0 + 61)
    (view,) = store.views(T0 + 62)
    assert (view.state, view.retry_at, view.probe_until) == (HALF_OPEN, T0 + 121, T0 + 121)


def test_memory_store_is_bounded_and_forgets_idle_breakers():
    store = MemoryBreakerStore(max_keys=100)
    for i in range(250):
        store.record(f"p:{i}", False, T0 + i * 0.01)
    assert len(store) == 100
    assert {v.key for v in store.views(T0 + 3)} == {f"p:{i}" for i in range(150, 250)}
    policy = store.policy
    assert store.views(T0 + 3 + policy.idle_ttl_s) == []
    store.record("p:fresh", False, T0 + 2 * policy.idle_ttl_s)
    assert len(store) == 1


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        BreakerPolicy(consecutive_failures=0)
    with pytest.raises(ValueError):
        BreakerPolicy(window_failure_ratio=0)
    with pytest.raises(ValueError):
        BreakerPolicy(idle_ttl_s=30)
