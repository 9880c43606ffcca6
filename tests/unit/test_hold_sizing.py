"""Hold sizing: the hold must cover the dearest usage a request can produce within its limits."""

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.hold_sizing import estimate_request_input_tokens, requested_output_limit
from domain.pricing import (
    Prices,
    TokenUsage,
    cost_micros,
    estimate_input_tokens,
    hold_micros,
    output_limit,
)

_price = st.decimals(min_value=0, max_value=10000, places=6, allow_nan=False, allow_infinity=False)
_prices = st.builds(Prices, _price, _price, st.none() | _price, st.none() | _price,
                    st.none() | _price)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=15,
)
MESSAGES = [{"role": "user", "content": "abc"}]


def _bytes(value) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def test_hold_multiplies_the_output_worst_case_by_n():
    prices = Prices(Decimal(1), Decimal(10))
    assert hold_micros(prices, 100, 50) == 100 + 500
    assert hold_micros(prices, 100, 50, 4) == 100 + 4 * 500
    assert hold_micros(prices, 100, 50, n=8) == 100 + 8 * 500


def test_hold_prices_input_at_the_dearest_input_rate():
    # Anthropic-style cache writes cost more than plain input; every input token might be one.
    prices = Prices(Decimal(3), Decimal(15), cached_input=Decimal("0.3"),
                    cache_write=Decimal("3.75"))
    assert hold_micros(prices, 1000, 0) == 3750
    assert hold_micros(Prices(Decimal(1), Decimal(0), cached_input=Decimal(2)), 10, 0) == 20


def test_hold_rounds_up_once_on_the_total():
    prices = Prices(Decimal("0.4"), Decimal("0.4"))
    assert hold_micros(prices, 1, 1, 1) == 1
    assert hold_micros(prices, 1, 1, 2) == 2  # 1.2 micros


@pytest.mark.parametrize("n", [0, -1, True, 1.5, "2", None])
def test_hold_rejects_a_bad_n(n):
    with pytest.raises(ValueError):
        hold_micros(Prices(Decimal(1), Decimal(1)), 1, 1, n)


@settings(max_examples=500, deadline=None)
@given(prices=_prices, estimate=st.integers(0, 10**7), limit=st.integers(0, 10**6),
       n=st.integers(1, 8), data=st.data())
def test_hold_covers_the_cost_of_any_usage_within_the_limits(prices, estimate, limit, n, data):
    prompt = data.draw(st.integers(0, estimate), label="prompt")
    cached = data.draw(st.integers(0, prompt), label="cached")
    write = data.draw(st.integers(0, prompt - cached), label="write")
    completion = data.draw(st.integers(0, n * limit), label="completion")
    reasoning = data.draw(st.integers(0, completion), label="reasoning")
    usage = TokenUsage(prompt, cached, write, completion, reasoning)
    assert hold_micros(prices, estimate, limit, n) >= cost_micros(prices, usage)


def test_request_estimate_counts_tools_functions_tool_choice_and_response_format():
    tools = [{"type": "function", "function": {"name": "lookup", "description": "é" * 3000,
                                               "parameters": {"type": "object"}}}]
    functions = [{"name": "f", "parameters": {}}]
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    body = {"model": "m", "messages": MESSAGES, "tools": tools, "functions": functions,
            "tool_choice": "auto", "response_format": response_format}
    extra = _bytes(tools) + _bytes(functions) + _bytes("auto") + _bytes(response_format)
    assert estimate_request_input_tokens(body) == -(-(3 + extra) // 3) + 8
    assert estimate_request_input_tokens(body) > 2000  # 6,000 bytes of description
    assert estimate_request_input_tokens({"messages": MESSAGES}) == estimate_input_tokens(MESSAGES)


@pytest.mark.parametrize("part", [
    {"type": "input_audio", "input_audio": {"data": "A" * 30_000, "format": "wav"}},
    {"type": "file", "file": {"file_data": "data:application/pdf;base64," + "A" * 30_000,
                              "filename": "a.pdf"}},
    {"type": "video_url", "video_url": {"url": "data:video/mp4;base64," + "A" * 30_000}},
])
def test_audio_file_and_unknown_parts_count_their_payload_at_a_token_per_3_bytes(part):
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}, part]}]
    expected = -(-(2 + _bytes(part)) // 3) + 8
    assert estimate_input_tokens(messages) == expected >= 10_000
    assert estimate_request_input_tokens({"messages": messages}) == expected


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(st.sampled_from(["messages", "tools", "functions", "tool_choice",
                                             "response_format", "other"]), _json))
def test_request_estimate_never_raises_and_covers_every_prompt_field(body):
    estimate = estimate_request_input_tokens(body)
    assert estimate >= estimate_input_tokens(body.get("messages"))
    for name in ("tools", "functions", "tool_choice", "response_format"):
        if body.get(name) is not None:
            assert estimate >= -(-_bytes(body[name]) // 3)


@pytest.mark.parametrize("junk", [None, [], "x", 5])
def test_request_estimate_of_junk_is_zero(junk):
    assert estimate_request_input_tokens(junk) == 0


def test_output_limit_takes_the_smallest_limit_given():
    assert output_limit({"max_completion_tokens": 50, "max_tokens": 20}, 4000) == 20
    assert output_limit({"max_completion_tokens": 50, "max_output_tokens": 7}, 4000) == 7
    assert output_limit({"max_tokens": 9000}, 4000) == 9000  # inference refuses it: over max
    assert output_limit({}, 4000) == 4000


@pytest.mark.parametrize("bad", ["abc", "10", -5, 0, True, [1], {"a": 1}, 1.5, 10.0, None])
def test_output_limit_ignores_bad_values_and_never_raises(bad):
    assert output_limit({"max_output_tokens": bad}, 300) == 300
    assert output_limit({"max_tokens": bad, "max_completion_tokens": 12}, 300) == 12
    assert output_limit({"max_tokens": bad}, bad) == 4096


@settings(max_examples=300, deadline=None)
@given(values=st.dictionaries(st.sampled_from(["max_tokens", "max_completion_tokens",
                                               "max_output_tokens"]), _json),
       model_max=st.none() | st.integers(-5, 10**6))
def test_output_limit_is_a_positive_int_no_larger_than_any_valid_limit(values, model_max):
    limit = output_limit(values, model_max)
    assert isinstance(limit, int) and limit >= 1
    valid = [v for v in values.values() if type(v) is int and v > 0]
    assert requested_output_limit(values) == (min(valid) if valid else None)
    if valid:
        assert limit == min(valid)
