"""Provider-reported usage is bounded before it reaches cost arithmetic or a database column."""

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.usage_meter import MAX_REPORTED_TOKENS, usage_from
from domain.pricing import MAX_PRICE_USD_PER_M, Prices, TokenUsage, cost_micros

INT64_MAX = 2**63 - 1
DEAREST = Prices(*(MAX_PRICE_USD_PER_M,) * 5)
_decode = msgspec.json.Decoder().decode


def _usage(**fields):
    return usage_from({"usage": fields})


def test_bound_is_an_int_above_any_context_window_and_fits_int32():
    assert type(MAX_REPORTED_TOKENS) is int
    assert 10_000_000 <= MAX_REPORTED_TOKENS < 2**31


@pytest.mark.parametrize("huge", [10**20, 100000000000000000000, MAX_REPORTED_TOKENS + 1, 2**64])
def test_a_count_above_the_bound_is_clamped_and_flagged(huge):
    usage = _usage(prompt_tokens=huge, completion_tokens=huge)
    assert usage == TokenUsage(prompt_tokens=MAX_REPORTED_TOKENS,
                               completion_tokens=MAX_REPORTED_TOKENS, clamped=True)


def test_the_bound_itself_is_not_clamped():
    usage = _usage(prompt_tokens=MAX_REPORTED_TOKENS, completion_tokens=5)
    assert usage.prompt_tokens == MAX_REPORTED_TOKENS and not usage.clamped


def test_nested_counts_are_clamped_and_kept_within_their_totals():
    usage = _usage(prompt_tokens=10, completion_tokens=2 * 10**30,
                   prompt_tokens_details={"cached_tokens": 10**25},
                   completion_tokens_details={"reasoning_tokens": 10**40})
    assert usage == TokenUsage(prompt_tokens=10, cached_tokens=10,
                               completion_tokens=MAX_REPORTED_TOKENS,
                               reasoning_tokens=MAX_REPORTED_TOKENS, clamped=True)
    only_detail = _usage(prompt_tokens=3, prompt_tokens_details={"cached_tokens": 10**12})
    assert only_detail.cached_tokens == 3 and only_detail.clamped


@pytest.mark.parametrize("bad", [-1.5, float("nan"), -1, -(10**30), True, False, "12", None,
                                 [3], {}])
def test_a_count_that_is_not_a_non_negative_number_is_zero_and_not_clamped(bad):
    usage = _usage(prompt_tokens=bad, completion_tokens=4)
    assert usage == TokenUsage(prompt_tokens=0, completion_tokens=4)
    assert not usage.clamped


@pytest.mark.parametrize(("sent", "counted"), [(5.0, 5), (12.2, 13), (float("inf"), None)])
def test_a_float_count_is_rounded_up_never_dropped(sent, counted):
    usage = _usage(prompt_tokens=sent, completion_tokens=4)
    assert usage.prompt_tokens == (MAX_REPORTED_TOKENS if counted is None else counted)
    assert usage.clamped is (counted is None)


def test_token_usage_keeps_its_old_construction_and_checks_clamped():
    assert TokenUsage(1, 0, 0, 2, 0) == TokenUsage(prompt_tokens=1, completion_tokens=2)
    assert TokenUsage().clamped is False
    with pytest.raises(ValueError):
        TokenUsage(clamped=1)  # type: ignore[arg-type]


def test_msgspec_decodes_big_integer_literals_as_python_ints_and_refuses_giant_ones():
    # Beyond 64 bits msgspec gives an exact Python int, which usage_from then clamps ...
    payload = _decode(b'{"usage":{"prompt_tokens":100000000000000000000,"completion_tokens":1}}')
    assert payload["usage"]["prompt_tokens"] == 10**20
    assert usage_from(payload).prompt_tokens == MAX_REPORTED_TOKENS
    # ... and an exponent literal is a float: still the provider's claim, clamped alike.
    claimed = usage_from(_decode(b'{"usage":{"prompt_tokens":1e20}}'))
    assert (claimed.prompt_tokens, claimed.clamped) == (MAX_REPORTED_TOKENS, True)
    # A literal past msgspec's own limit is a DecodeError, which the callers already catch.
    with pytest.raises(msgspec.DecodeError):
        _decode(b'{"usage":{"prompt_tokens":1' + b"0" * 5000 + b"}}")
    with pytest.raises(msgspec.DecodeError):
        _decode(b'{"usage":{"prompt_tokens":1e400}}')


def test_the_dearest_clamped_usage_costs_less_than_int64():
    usage = TokenUsage(prompt_tokens=MAX_REPORTED_TOKENS, cached_tokens=0,
                       completion_tokens=MAX_REPORTED_TOKENS,
                       reasoning_tokens=MAX_REPORTED_TOKENS, clamped=True)
    cost = cost_micros(DEAREST, usage)
    # 1 USD per million tokens is 1 micro per token: 2e9 tokens x 10,000 = 2e13 micros.
    assert cost == 2 * MAX_REPORTED_TOKENS * int(MAX_PRICE_USD_PER_M)
    assert cost <= INT64_MAX


_count = st.integers(-(10**30), 10**30) | st.floats() | st.booleans() | st.text(max_size=3)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=12,
)
_usage_object = st.fixed_dictionaries({}, optional={
    "prompt_tokens": _count, "completion_tokens": _count,
    "prompt_tokens_details": _json | st.fixed_dictionaries({}, optional={"cached_tokens": _count}),
    "completion_tokens_details": _json | st.fixed_dictionaries(
        {}, optional={"reasoning_tokens": _count}),
})
_price = st.decimals(min_value=0, max_value=MAX_PRICE_USD_PER_M, places=6, allow_nan=False,
                     allow_infinity=False)


@settings(max_examples=500, deadline=None)
@given(payload=_json | st.fixed_dictionaries({"usage": _usage_object | _json}, optional={
    "choices": _json, "model": _json}), prices=st.builds(Prices, _price, _price, _price, _price,
                                                        _price))
def test_usage_from_never_raises_and_stays_bounded(payload, prices):
    usage = usage_from(payload)
    if usage is None:
        return
    for count in (usage.prompt_tokens, usage.cached_tokens, usage.cache_write_tokens,
                  usage.completion_tokens, usage.reasoning_tokens):
        assert type(count) is int and 0 <= count <= MAX_REPORTED_TOKENS
    assert 0 <= cost_micros(prices, usage) <= cost_micros(DEAREST, usage) <= INT64_MAX


@settings(max_examples=200, deadline=None)
@given(digits=st.integers(0, 10**60))
def test_decoded_provider_json_is_clamped_exactly_when_over_the_bound(digits):
    raw = b'{"usage":{"prompt_tokens":%d,"completion_tokens":0}}' % digits
    usage = usage_from(_decode(raw))
    assert usage.prompt_tokens == min(digits, MAX_REPORTED_TOKENS)
    assert usage.clamped is (digits > MAX_REPORTED_TOKENS)

