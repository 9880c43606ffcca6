"""Provider credit levels (spec 3.6), pure: thresholds and their config, exact micro-USD,
the ProviderCredit stream (one LevelChanged per crossing), and the /credits body parser."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.provider_balance import BalanceError, remaining_of
from domain.provider_credit import (
    DEFAULT_THRESHOLDS,
    LEVELS,
    MAX_MICROS,
    CreditConfigError,
    ProviderCredit,
    Thresholds,
    format_usd,
    is_worse,
    thresholds_of,
    usd_to_micros,
)

USD = 1_000_000


def changes(credit: ProviderCredit) -> list[ProviderCredit.LevelChanged]:
    return [e for e in credit.collect_events() if isinstance(e, ProviderCredit.LevelChanged)]


@pytest.mark.parametrize(("usd", "level"), [
    ("10000", None), ("500.000001", None), ("500", "info"), ("100.000001", "info"),
    ("100", "warning"), ("80", "warning"), ("20.000001", "warning"), ("20", "critical"),
    ("0", "critical"), ("-5", "critical")])
def test_default_thresholds_are_inclusive_upper_bounds(usd, level):
    assert DEFAULT_THRESHOLDS.level(usd_to_micros(Decimal(usd))) == level


def test_per_provider_thresholds_come_from_config_in_usd_and_keep_unset_defaults():
    found = thresholds_of({"openrouter": {"warning": "250.5", "info": 1000},
                           "other": {}})
    assert found["openrouter"] == Thresholds(1000 * USD, 250_500_000, 20 * USD)
    assert found["other"] == DEFAULT_THRESHOLDS
    assert found["openrouter"].level(200 * USD) == "warning"
    assert found["openrouter"].as_json() == {
        "info_usd": "1000", "warning_usd": "250.5", "critical_usd": "20"}


@pytest.mark.parametrize("raw", [
    [], {"openrouter": []}, {"openrouter": {"urgent": "5"}}, {"openrouter": {"info": 1.5}},
    {"openrouter": {"info": True}}, {"openrouter": {"info": "-1"}},
    {"openrouter": {"info": "1000000001"}}, {"openrouter": {"info": "NaN"}},
    {"openrouter": {"info": "lots"}}, {"openrouter": {"info": "1" * 50}},
    {"openrouter": {"warning": "600"}},  # above the default info: unreachable info
    {"openrouter": {"critical": "10", "warning": "5"}}])
def test_broken_threshold_config_is_refused(raw):
    with pytest.raises(CreditConfigError):
        thresholds_of(raw)


def test_thresholds_themselves_are_checked():
    with pytest.raises(CreditConfigError):
        Thresholds(10, 20, 5)
    with pytest.raises(CreditConfigError):
        Thresholds(MAX_MICROS + 1, 0, 0)
    assert Thresholds(0, 0, 0).level(1) is None and Thresholds(0, 0, 0).level(0) == "critical"


def test_usd_becomes_micros_exactly_rounded_down_and_bounded():
    assert usd_to_micros(Decimal("80.0000009")) == 80_000_000  # down: never hides a crossing
    assert usd_to_micros(Decimal("-0.0000001")) == -1
    assert usd_to_micros(100) == 100 * USD
    assert usd_to_micros(Decimal("999999999.999999" + "9" * 60)) == MAX_MICROS - 1
    for bad in (Decimal("NaN"), Decimal("Infinity"), Decimal("1000000000.000001"), 1.5, True,
                "80"):
        with pytest.raises(ValueError):
            usd_to_micros(bad)
    assert (format_usd(80_500_000), format_usd(100 * USD), format_usd(0)) == ("80.5", "100",
                                                                             "0")


def test_a_stream_records_a_crossing_once_with_the_previous_level_and_the_balance():
    credit = ProviderCredit(provider="openrouter")
    assert credit.observe(None, 900 * USD) is False  # a new stream is healthy already
    assert credit.observe("warning", 80 * USD) is True
    for _ in range(9):
        assert credit.observe("warning", 80 * USD) is False
    assert credit.observe("critical", 10 * USD) and credit.observe(None, 1000 * USD)
    got = [(e.provider, e.level, e.previous, e.balance_micros, e.actor)
           for e in changes(credit)]
    assert got == [("openrouter", "warning", None, 80 * USD, "system"),
                   ("openrouter", "critical", "warning", 10 * USD, "system"),
                   ("openrouter", None, "critical", 1000 * USD, "system")]


def test_a_stream_refuses_unknown_levels_and_unbounded_balances():
    credit = ProviderCredit(provider="openrouter")
    for level, micros in (("low", 1), ("warning", MAX_MICROS + 1), ("warning", 1.5),
                          ("warning", True)):
        with pytest.raises(ValueError):
            credit.observe(level, micros)
    assert changes(credit) == []


# Balances clustered around the default thresholds, where crossings happen.
_EDGES = [t + d for t in (500 * USD, 100 * USD, 20 * USD, 0) for d in (-1, 0, 1)]
balances = st.one_of(st.sampled_from(_EDGES),
                     st.integers(min_value=-MAX_MICROS, max_value=MAX_MICROS))


@given(st.lists(balances, max_size=60))
def test_one_event_per_crossing_whatever_the_sequence_of_readings(readings):
    credit = ProviderCredit(provider="p")
    levels = [DEFAULT_THRESHOLDS.level(b) for b in readings]
    for balance, level in zip(readings, levels, strict=True):
        credit.observe(level, balance)
    crossings = sum(1 for before, after in zip([None, *levels], levels, strict=False)
                    if before != after)
    events = changes(credit)
    assert len(events) == crossings
    # Each event continues from the one before; the state is the last reading's level.
    assert [e.previous for e in events] == [None, *[e.level for e in events]][:len(events)]
    assert credit.level == (levels[-1] if levels else None)


@given(st.integers(min_value=-MAX_MICROS, max_value=MAX_MICROS),
       st.integers(min_value=0, max_value=MAX_MICROS))
def test_less_money_is_never_a_healthier_level(balance, less):
    lower = DEFAULT_THRESHOLDS.level(balance - less)
    assert not is_worse(DEFAULT_THRESHOLDS.level(balance), lower)
    assert lower in LEVELS


def body(text: str):
    return json.loads(text, parse_float=Decimal, parse_constant=Decimal)


def test_the_openrouter_body_gives_the_exact_remaining_usd():
    assert remaining_of(body('{"data": {"total_credits": 100.1, "total_usage": 20.05}}')) \
        == Decimal("80.05")
    assert remaining_of(body('{"data": {"total_credits": 50, "total_usage": 0}}')) == 50
    # Usage past the credits is a real (negative) remaining balance: critical, not an error.
    assert remaining_of(body('{"data": {"total_credits": 5, "total_usage": 7.5}}')) \
        == Decimal("-2.5")
    tiny = '{"data": {"total_credits": 1e-90, "total_usage": 0}}'
    assert remaining_of(body(tiny)) == Decimal("1e-90")


@pytest.mark.parametrize("text", [
    '[]', '{"data": []}', '{"data": {}}', '{"data": {"total_credits": 10}}',
    '{"data": {"total_credits": "10", "total_usage": 0}}',
    '{"data": {"total_credits": true, "total_usage": 0}}',
    '{"data": {"total_credits": NaN, "total_usage": 0}}',
    '{"data": {"total_credits": Infinity, "total_usage": 0}}',
    '{"data": {"total_credits": -1, "total_usage": 0}}',
    '{"data": {"total_credits": 1000000000.01, "total_usage": 0}}',
    '{"data": {"total_credits": 1e999999, "total_usage": 0}}',
    '{"data": {"total_credits": 1, "total_usage": 1e-200}}',  # not exact in 100 digits
])
def test_anything_else_is_a_failed_read(text):
    with pytest.raises(BalanceError):
        remaining_of(body(text))
