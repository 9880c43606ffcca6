"""The probe schedule (spec 3.1): tiers by 7-day requests with intervals of exactly 300 /
1,800 / 7,200 s (on-demand 4 h), a failing pair due again within 300 s whatever its tier,
due pairs in order, batches of 50, and up to 3 retries of a failed probe."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import probe_schedule as s
from domain.probe_schedule import (
    CRITICAL,
    ON_DEMAND,
    POPULAR,
    STANDARD,
    LastResult,
    assign_tiers,
    batches,
    due,
    judge,
    next_probe_at,
    next_wake,
    should_retry,
)


def pairs(n: int) -> list[tuple[str, str]]:
    return [("acme", f"m-{i:03d}") for i in range(n)]


def test_tier_intervals_timeouts_and_max_tokens_are_the_specs():
    assert [(t.name, t.interval_s, t.timeout_s, t.max_tokens) for t in s.TIERS] == [
        ("critical", 300, 30, 10), ("popular", 1_800, 45, 10), ("standard", 7_200, 60, 5),
        ("on_demand", 14_400, 60, 5)]


@pytest.mark.parametrize("tier", [CRITICAL, POPULAR, STANDARD, ON_DEMAND])
def test_a_healthy_pair_is_due_exactly_one_interval_after_its_last_probe(tier):
    last = LastResult(at=1_000.0, ok=True)
    assert next_probe_at(tier, last) == 1_000.0 + tier.interval_s
    key = ("acme", "m")
    assert due({key: tier}, {key: last}, 1_000.0 + tier.interval_s - 0.001) == []
    [found] = due({key: tier}, {key: last}, 1_000.0 + tier.interval_s)
    assert (found.pair, found.tier, found.failing) == (key, tier, False)


@given(tier=st.sampled_from(s.TIERS), at=st.floats(0, 1e10))
def test_a_failing_pairs_next_probe_is_at_most_300_s_away(tier, at):
    assert next_probe_at(tier, LastResult(at, ok=False)) - at <= 300


def test_top_5_percent_are_critical_next_20_popular_the_rest_standard_unused_on_demand():
    used = pairs(100)
    requests = {p: 1_000 - i for i, p in enumerate(used)}  # m-000 busiest
    never = [("other", "new-model")]
    tiers = assign_tiers(used + never, requests)
    names = [tiers[p].name for p in used]
    assert names == ["critical"] * 5 + ["popular"] * 20 + ["standard"] * 75
    assert tiers[never[0]] is ON_DEMAND


def test_shares_round_up_so_a_single_used_pair_is_critical_and_ties_rank_by_name():
    assert assign_tiers(pairs(1), {pairs(1)[0]: 3})[pairs(1)[0]] is CRITICAL
    four = pairs(4)
    tiers = assign_tiers(four, dict.fromkeys(four, 7))
    assert [tiers[p] for p in four] == [CRITICAL, POPULAR, STANDARD, STANDARD]


def test_a_used_pair_never_probed_is_due_at_once_an_unused_one_never_until_asked():
    used, unused = ("acme", "busy"), ("acme", "idle")
    found = due({used: STANDARD, unused: ON_DEMAND}, {}, 0.0)
    assert [d.pair for d in found] == [used]
    # Once probed (an admin asked), the on-demand pair comes back every 4 h.
    last = {unused: LastResult(0.0, ok=True)}
    assert due({unused: ON_DEMAND}, last, 14_399.0) == []
    assert [d.pair for d in due({unused: ON_DEMAND}, last, 14_400.0)] == [unused]


def test_due_pairs_come_failing_first_then_by_tier_then_longest_overdue():
    a, b, c, d = (("p", x) for x in "abcd")
    tiers = {a: STANDARD, b: CRITICAL, c: STANDARD, d: POPULAR}
    last = {a: LastResult(0.0, True), b: LastResult(9_000.0, True),
            c: LastResult(9_000.0, False), d: LastResult(5_000.0, True)}
    assert [x.pair for x in due(tiers, last, 10_000.0)] == [c, b, d, a]


def test_the_scheduler_wakes_for_the_earliest_due_pair():
    a, b, idle = ("p", "a"), ("p", "b"), ("p", "idle")
    tiers = {a: STANDARD, b: CRITICAL, idle: ON_DEMAND}
    last = {a: LastResult(100.0, False), b: LastResult(0.0, True)}
    assert next_wake(tiers, last) == 300.0  # b at 0 + 300 and a failing at 100 + 300
    assert next_wake({idle: ON_DEMAND}, {}) is None  # never probed, never used: not due


def test_batches_are_of_50_in_order():
    found = batches(list(range(120)))
    assert [len(b) for b in found] == [50, 50, 20]
    assert [x for b in found for x in b] == list(range(120))
    assert batches([]) == []
    with pytest.raises(ValueError):
        batches([1], 0)


def test_a_failed_probe_is_retried_up_to_3_times_then_recorded():
    failure = judge(503)
    assert [should_retry(n, failure) for n in (1, 2, 3, 4)] == [True, True, True, False]
    assert not should_retry(1, judge(200))
    # A refusal retrying cannot change (bad credential, model gone) is recorded at once.
    assert not should_retry(1, judge(401)) and not should_retry(1, judge(404))
    assert [s.retry_delay(n, 1.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(("status", "error", "ok", "outcome", "error_class"), [
    (200, None, True, "success", None),
    (400, None, True, "success", "rejected"),
    (401, None, False, "error", "auth"),
    (404, None, False, "error", "not_found"),
    (408, None, False, "timeout", "timeout"),
    (429, None, False, "rate_limited", "rate_limited"),
    (503, None, False, "error", "server_error"),
    (None, "timeout", False, "timeout", "timeout"),
    (None, "connection", False, "error", "connection"),
    (200, "bad_response", False, "error", "bad_response"),
])
def test_each_answer_is_judged_in_routing_healths_vocabulary(status, error, ok, outcome,
                                                             error_class):
    verdict = judge(status, error)
    assert (verdict.ok, verdict.outcome, verdict.error_class) == (ok, outcome, error_class)
