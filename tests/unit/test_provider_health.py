"""Passive health of a (provider, model) pair (spec 3.2, 03 status, 2.6 EWMA, 2.7 rules):
window expiry, the EWMA formula, the status thresholds, bounded memory, the board's bound."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.breakers import HealthBoard
from domain.provider_health import (
    DEGRADED,
    DOWN,
    HEALTHY,
    HealthPolicy,
    ProviderHealth,
    classify,
    ewma,
)

T0 = 1_700_000_000.0


def health(*outcomes: str, at: float = T0) -> ProviderHealth:
    h = ProviderHealth("openai", "openai/gpt-4o")
    for outcome in outcomes:
        h.record(outcome, 200 if outcome == "success" else 503, 100, 400, at)
    return h


@pytest.mark.parametrize(("ok", "status"), [
    (10, HEALTHY), (8, HEALTHY), (7, DEGRADED), (5, DEGRADED), (4, DOWN), (0, DOWN)])
def test_status_thresholds_over_ten_samples(ok, status):
    view = health(*["success"] * ok, *["error"] * (10 - ok)).view(T0)
    assert (view.samples, view.successes, view.score, view.status) == (10, ok, ok * 10, status)


def test_exact_thresholds_compare_without_float_drift():
    policy = HealthPolicy()
    assert classify(80, 100, policy) == (80.0, HEALTHY)
    assert classify(799, 1000, policy)[1] == DEGRADED
    assert classify(50, 100, policy)[1] == DEGRADED
    assert classify(499, 1000, policy)[1] == DOWN


def test_under_ten_samples_there_is_no_score_and_it_counts_as_healthy():
    view = health(*["error"] * 9).view(T0)
    assert (view.score, view.status, view.samples) == (None, HEALTHY, 9)
    assert view.success_rate == 0.0  # still reported for the last-resort choice (2.7)
    assert health().view(T0).success_rate is None


def test_twenty_consecutive_503s_make_a_pair_down():
    view = health(*["error"] * 20).view(T0 + 1)
    assert (view.status, view.consecutive_failures, view.last_status) == (DOWN, 20, 503)


def test_rate_limited_and_timeout_count_against_the_success_rate():
    view = health(*["success"] * 7, "rate_limited", "timeout", "error").view(T0)
    assert (view.successes, view.status) == (7, DEGRADED)
    with pytest.raises(ValueError):
        health("maybe")


def test_records_older_than_the_window_expire():
    h = health(*["error"] * 10)  # at T0, bucket [T0, T0 + 10)
    assert h.view(T0 + 300).status == DOWN
    assert h.view(T0 + 309.9).samples == 10  # its bucket still overlaps the last 300 s
    assert h.view(T0 + 310).samples == 0
    for i in range(10):
        h.record("success", 200, 50, 90, T0 + 310 + i)
    view = h.view(T0 + 320)
    assert (view.samples, view.status, view.consecutive_successes) == (10, HEALTHY, 10)


def test_ewma_first_sample_sets_it_then_alpha_0_2():
    assert ewma(None, 800, 0.2) == 800.0
    assert ewma(800.0, 300, 0.2) == pytest.approx(0.2 * 300 + 0.8 * 800)
    h = ProviderHealth("p", "m")
    h.record("success", 200, 800, 2000, T0)
    h.record("success", 200, 300, 1000, T0 + 1)
    view = h.view(T0 + 1)
    assert view.ttfb_ewma_ms == pytest.approx(700.0)
    assert view.total_ewma_ms == pytest.approx(1800.0)


def test_failures_and_missing_latencies_leave_the_ewmas_alone():
    h = ProviderHealth("p", "m")
    h.record("error", 503, 5, 5, T0)
    assert h.view(T0).ttfb_ewma_ms is None
    h.record("success", 200, 400, None, T0)
    h.record("timeout", None, None, 60_000, T0)
    h.record("success", 200, None, 900, T0)
    view = h.view(T0)
    assert (view.ttfb_ewma_ms, view.total_ewma_ms) == (400.0, 900.0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 10_000, allow_nan=False), min_size=1, max_size=50))
def test_ewma_stays_within_the_samples_range(samples):
    value = None
    for x in samples:
        value = ewma(value, x, 0.2)
    assert min(samples) - 1e-6 <= value <= max(samples) + 1e-6


def test_memory_is_bounded_whatever_the_traffic():
    h = ProviderHealth("p", "m")
    for i in range(20_000):  # 2 hours, one record every 0.36 s
        h.record("success", 200, 1, 1, T0 + i * 0.36)
    assert h.bucket_count() <= HealthPolicy().max_buckets == 31


def test_a_clock_step_back_counts_in_the_newest_bucket():
    h = health("success", at=T0 + 100)
    h.record("error", 503, 1, 1, T0 + 50)
    assert h.bucket_count() == 1 and h.view(T0 + 100).samples == 2


def test_board_views_a_pair_or_none():
    board = HealthBoard()
    assert board.view("openai", "gpt-4o", T0) is None
    returned = board.record("openai", "gpt-4o", "success", 200, 120, 500, T0)
    assert board.view("openai", "gpt-4o", T0) == returned
    assert board.view("openai", "gpt-4o-mini", T0) is None
    assert [v.model for v in board.views(T0)] == ["gpt-4o"]


def test_board_keeps_at_most_max_keys_least_recently_updated_out_first():
    board = HealthBoard(max_keys=10_000)
    board.record("keep", "m", "success", 200, 1, 1, T0)
    for i in range(10_050):
        board.record("p", f"m{i}", "error", 500, 1, 1, T0)
        if i % 1000 == 0:
            board.record("keep", "m", "success", 200, 1, 1, T0)
    assert len(board) == 10_000
    assert board.view("keep", "m", T0) is not None
    assert board.view("p", "m0", T0) is None and board.view("p", "m10049", T0) is not None


def test_board_reads_do_not_keep_a_pair_alive():
    board = HealthBoard(max_keys=2)
    board.record("p", "a", "success", 200, 1, 1, T0)
    board.record("p", "b", "success", 200, 1, 1, T0)
    board.view("p", "a", T0)
    board.record("p", "c", "success", 200, 1, 1, T0)
    assert board.view("p", "a", T0) is None and len(board) == 2


def test_board_uses_its_clock_when_no_time_is_given():
    now = [T0]
    board = HealthBoard(clock=lambda: now[0])
    for _ in range(10):
        board.record("p", "m", "error", 500, None, None)
    assert board.view("p", "m").status == DOWN
    now[0] += 311
    assert board.view("p", "m").status == HEALTHY
