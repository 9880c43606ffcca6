"""domain.selection: provider ordering by strategy (2.6), health (2.7) and credit (3.6)."""

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.pricing import Prices
from domain.selection import (
    STRATEGIES,
    Candidate,
    Needs,
    effective_cost,
    order_candidates,
    unmet_need,
)


def cand(slug, *, price_in="1", price_out="1", priority=0, weight=50, caps=(), ctx=None,
         sr=None, ewma=None, in_flight=0, circuit_open=False, credit=None, maintenance=False):
    return Candidate(slug=slug, priority=priority, weight=weight,
                     prices=Prices(input=Decimal(price_in), output=Decimal(price_out)),
                     capabilities=frozenset(caps), context_length=ctx, success_rate=sr,
                     latency_ewma_ms=ewma, in_flight=in_flight, circuit_open=circuit_open,
                     credit_level=credit, maintenance=maintenance)


NO_NEEDS = Needs()


def order(cands, needs=NO_NEEDS, strategy="lowest-cost", seed=0):
    return order_candidates(cands, needs, strategy, random.Random(seed))


def slugs(ordering):
    return [c.slug for c in ordering.ordered]


# --- 2.6 Accept ---------------------------------------------------------------------------

def test_cheaper_input_price_wins():
    result = order([cand("a", price_in="0.50"), cand("b", price_in="0.40")],
                   Needs(input_tokens=1000))
    assert slugs(result) == ["b", "a"]


def test_equal_price_lower_latency_wins():
    result = order([cand("slow", ewma=800), cand("fast", ewma=300)])
    assert slugs(result) == ["fast", "slow"]


def test_weighted_70_30_over_1000_draws():
    rng = random.Random(42)
    cands = [cand("a", weight=70), cand("b", weight=30)]
    firsts = [order_candidates(cands, Needs(), "weighted", rng).ordered[0].slug
              for _ in range(1000)]
    assert abs(firsts.count("a") / 10 - 70) <= 5


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_tools_never_go_to_a_provider_without_tools(strategy):
    cheap_no_tools = cand("cheap", price_in="0.01", caps={"streaming"}, weight=100, ewma=1)
    dear_tools = cand("dear", price_in="9", caps={"tools", "streaming"}, weight=1)
    for seed in range(50):
        result = order([cheap_no_tools, dear_tools], Needs(tools=True), strategy, seed)
        assert slugs(result) == ["dear"]
        assert result.excluded == {"cheap": "unsupported:tools"}


# --- lowest-cost details --------------------------------------------------------------------

def test_token_mix_decides_the_effective_price():
    input_cheap = cand("in", price_in="0.1", price_out="10")
    output_cheap = cand("out", price_in="5", price_out="1")
    assert slugs(order([input_cheap, output_cheap], Needs(input_tokens=10_000,
                                                          output_tokens=10)))[0] == "in"
    assert slugs(order([input_cheap, output_cheap], Needs(input_tokens=10,
                                                          output_tokens=10_000)))[0] == "out"


def test_unknown_mix_compares_input_plus_output():
    # 0.1 + 10 > 5 + 1: with no token counts the sum of the two prices decides.
    a = cand("a", price_in="0.1", price_out="10")
    b = cand("b", price_in="5", price_out="1")
    assert slugs(order([a, b])) == ["b", "a"]
    assert effective_cost(b.prices, Needs()) == 6_000_000


def test_sub_micro_price_difference_is_not_rounded_away():
    # One token at either price costs 1 micro-USD once rounded; the order must still see it.
    a = cand("a", price_in="0.500001")
    b = cand("b", price_in="0.5")
    assert slugs(order([a, b], Needs(input_tokens=1))) == ["b", "a"]


def test_cost_ties_break_on_latency_then_priority_then_slug():
    result = order([cand("d", priority=2, ewma=100), cand("c", priority=1, ewma=100),
                    cand("b", priority=1, ewma=100), cand("a", ewma=50)])
    assert slugs(result) == ["a", "b", "c", "d"]


def test_unknown_latency_ranks_after_known_at_equal_price():
    assert slugs(order([cand("new"), cand("known", ewma=5000)])) == ["known", "new"]


# --- other strategies -------------------------------------------------------------------------

def test_priority_strategy_is_admin_order():
    result = order([cand("b", priority=1, price_in="0.1"), cand("a", priority=1),
                    cand("z", priority=0, price_in="9")], strategy="priority")
    assert slugs(result) == ["z", "a", "b"]


def test_weight_zero_only_after_every_positive_weight():
    cands = [cand("zero", weight=0, priority=0), cand("one", weight=1, priority=5),
             cand("big", weight=100)]
    for seed in range(200):
        assert slugs(order(cands, strategy="weighted", seed=seed))[-1] == "zero"


def test_lowest_latency_unknown_last_then_priority():
    result = order([cand("none"), cand("b", ewma=200, priority=2),
                    cand("a", ewma=200, priority=1), cand("fast", ewma=90)],
                   strategy="lowest-latency")
    assert slugs(result) == ["fast", "a", "b", "none"]


def test_least_busy_then_priority():
    result = order([cand("busy", in_flight=9), cand("b", in_flight=1, priority=1),
                    cand("a", in_flight=1, priority=0)], strategy="least-busy")
    assert slugs(result) == ["a", "b", "busy"]


def test_unknown_strategy_and_duplicate_slugs_are_refused():
    with pytest.raises(ValueError, match="lowest-cost"):
        order([cand("a")], strategy="cheapest")
    with pytest.raises(ValueError, match="unique"):
        order([cand("a"), cand("a")])


# --- semantic parameters ----------------------------------------------------------------------

@pytest.mark.parametrize("need", ["tools", "vision", "json_schema", "logprobs"])
def test_each_capability_need_excludes_providers_that_lack_it(need):
    result = order([cand("lacks", caps={"streaming"}), cand("has", caps={need}),
                    cand("unknown")], Needs(**{need: True}))
    assert set(slugs(result)) == {"has", "unknown"}
    assert result.excluded == {"lacks": f"unsupported:{need}"}


def test_context_length_too_short_is_excluded_unknown_is_not():
    result = order([cand("short", ctx=8000), cand("long", ctx=128_000), cand("unknown")],
                   Needs(context_tokens=10_000))
    assert set(slugs(result)) == {"long", "unknown"}
    assert result.excluded == {"short": "context_length"}
    assert unmet_need(frozenset(), 10_000, Needs(context_tokens=10_000)) is None


# --- 2.7 Accept and health --------------------------------------------------------------------

def test_40_percent_is_skipped_90_percent_tried():
    result = order([cand("a", sr=0.4, price_in="0.01"), cand("b", sr=0.9)])
    assert slugs(result) == ["b"]
    assert result.excluded == {"a": "unhealthy"}


def test_no_health_data_is_eligible():
    result = order([cand("new", sr=None), cand("old", sr=0.99, price_in="5")])
    assert slugs(result) == ["new", "old"]


def test_unreadable_health_store_serves_first_in_strategy_order():
    # The caller passes None for every figure it could not read.
    cands = [cand("b", priority=1), cand("a", priority=0)]
    assert slugs(order(cands, strategy="priority")) == ["a", "b"]


def test_band_70_percent_before_50_to_70_whatever_the_price():
    result = order([cand("flaky", sr=0.6, price_in="0.01"), cand("solid", sr=0.7, price_in="9"),
                    cand("edge", sr=0.5, price_in="0.02")])
    assert slugs(result) == ["solid", "flaky", "edge"]


def test_circuit_open_and_maintenance_are_skipped():
    result = order([cand("open", circuit_open=True), cand("maint", maintenance=True),
                    cand("ok", sr=0.8)])
    assert slugs(result) == ["ok"]
    assert result.excluded == {"open": "circuit_open", "maint": "maintenance"}


def test_all_unhealthy_best_success_rate_is_last_resort():
    result = order([cand("a", sr=0.2), cand("b", sr=0.45), cand("c", circuit_open=True)])
    assert slugs(result) == ["b"] and result.last_resort
    assert result.excluded == {"a": "unhealthy", "c": "circuit_open"}


def test_all_circuits_open_gives_nothing():
    result = order([cand("a", circuit_open=True), cand("b", circuit_open=True)])
    assert result.ordered == [] and not result.last_resort
    assert set(result.excluded.values()) == {"circuit_open"}


def test_capability_exclusions_never_become_last_resort():
    result = order([cand("a", caps={"streaming"}), cand("b", caps={"vision"}, sr=0.1)],
                   Needs(tools=True))
    assert result.ordered == []


def test_empty_input():
    assert order([]).ordered == []


# --- 3.6 credit -------------------------------------------------------------------------------

def test_credit_warning_goes_last_even_after_the_degraded_band():
    result = order([cand("warn", credit="warning", price_in="0.01", sr=0.99),
                    cand("degraded", sr=0.6), cand("info", credit="info", price_in="2")])
    assert slugs(result) == ["info", "degraded", "warn"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_credit_warning_last_for_every_strategy(strategy):
    cands = [cand("warn", credit="warning", weight=100, priority=0, ewma=1, price_in="0.01"),
             cand("a", weight=1, priority=5), cand("b", weight=1, priority=6)]
    for seed in range(20):
        assert slugs(order(cands, strategy=strategy, seed=seed))[-1] == "warn"


def test_credit_critical_excluded_unless_nothing_else():
    result = order([cand("crit", credit="critical", price_in="0.01"), cand("ok")])
    assert slugs(result) == ["ok"] and result.excluded == {"crit": "credit_critical"}
    alone = order([cand("crit", credit="critical"), cand("sick", sr=0.1)])
    assert slugs(alone) == ["crit"] and alone.excluded == {"sick": "unhealthy"}


# --- properties -------------------------------------------------------------------------------

_candidates = st.builds(
    cand,
    st.sampled_from([f"p{i}" for i in range(12)]),
    price_in=st.sampled_from(["0", "0.1", "0.5", "2.25"]),
    priority=st.integers(0, 3),
    weight=st.integers(0, 100),
    caps=st.sets(st.sampled_from(["tools", "vision", "json_schema", "logprobs"])),
    ctx=st.none() | st.sampled_from([4096, 32_000, 200_000]),
    sr=st.none() | st.floats(0, 1),
    ewma=st.none() | st.floats(1, 5000),
    in_flight=st.integers(0, 5),
    circuit_open=st.booleans(),
    credit=st.sampled_from([None, "info", "warning", "critical"]),
    maintenance=st.booleans(),
)
_inputs = st.lists(_candidates, max_size=8, unique_by=lambda c: c.slug)
_needs = st.builds(Needs, tools=st.booleans(), vision=st.booleans(), json_schema=st.booleans(),
                   logprobs=st.booleans(), context_tokens=st.sampled_from([0, 10_000, 100_000]),
                   input_tokens=st.integers(0, 10**6), output_tokens=st.integers(0, 10**5))


@settings(max_examples=300, deadline=None)
@given(_inputs, _needs, st.sampled_from(STRATEGIES), st.integers(0, 2**32))
def test_ordering_partitions_the_input(cands, needs, strategy, seed):
    result = order(cands, needs, strategy, seed)
    ordered = slugs(result)
    assert len(ordered) == len(set(ordered))
    assert set(ordered).isdisjoint(result.excluded)
    assert set(ordered) | set(result.excluded) == {c.slug for c in cands}


@settings(max_examples=200, deadline=None)
@given(_inputs, _needs, st.sampled_from(STRATEGIES), st.integers(0, 2**32))
def test_same_seed_same_order(cands, needs, strategy, seed):
    assert order(cands, needs, strategy, seed) == order(cands, needs, strategy, seed)


@settings(max_examples=300, deadline=None)
@given(_inputs, _needs, st.sampled_from(STRATEGIES), st.integers(0, 2**32))
def test_never_a_provider_that_cannot_honour_or_is_open(cands, needs, strategy, seed):
    for c in order(cands, needs, strategy, seed).ordered:
        assert unmet_need(c.capabilities, c.context_length, needs) is None
        assert not c.circuit_open and not c.maintenance


@settings(max_examples=200, deadline=None)
@given(_inputs, st.sampled_from(STRATEGIES), st.integers(0, 2**32))
def test_healthy_candidates_never_yield_to_sick_ones(cands, strategy, seed):
    result = order(cands, Needs(), strategy, seed)
    if result.last_resort:
        assert len(result.ordered) == 1
        return
    for c in result.ordered:
        assert c.success_rate is None or c.success_rate >= 0.5
