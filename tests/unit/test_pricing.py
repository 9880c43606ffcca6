"""Tests for domain.pricing: price parsing, exact micro-USD costs, holds and the premium matcher."""

import json
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.pricing import (
    FALLBACK_PRICE_USD_PER_M,
    PriceError,
    Prices,
    TokenUsage,
    cost_micros,
    estimate_input_tokens,
    estimate_text_tokens,
    fallback_prices,
    hold_micros,
    is_premium_model,
    output_limit,
    parse_price,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2.5", Decimal("2.5")),
        ("0", Decimal(0)),
        (10, Decimal(10)),
        ("0.000001", Decimal("0.000001")),
        ("10000", Decimal(10000)),
        ("2.5000000", Decimal("2.5")),
        (0, Decimal(0)),
    ],
)
def test_parse_price_accepts(raw, expected):
    assert parse_price(raw, "input") == expected


# fmt: off
REJECTED_PRICES = [
    2.5, 1.0, True, None, "-1", -1, "10000.000001", 10001, "0.0000001", "1e3", " 1", "1 ", "NaN",
    "Infinity", "1_0", "", ".5", "5.", "0x10", "+1", "\u0661",
]
# fmt: on


@pytest.mark.parametrize("raw", REJECTED_PRICES)
def test_parse_price_rejects_with_param(raw):
    with pytest.raises(PriceError) as info:
        parse_price(raw, "cached_input")
    assert info.value.param == "cached_input"
    assert isinstance(info.value, ValueError)


def test_to_json_normalises_and_omits_none():
    prices = Prices(input=Decimal("2.50"), output=Decimal("1E+1"), cached_input=Decimal("0.000"))
    assert prices.to_json() == {"input": "2.5", "output": "10", "cached_input": "0"}


def test_json_round_trip():
    prices = Prices(
        Decimal("0.15"), Decimal("0.6"), Decimal("0.075"), Decimal("0.1875"), Decimal("2")
    )
    assert Prices.from_json(prices.to_json()) == prices
    assert Prices.from_json(json.loads(json.dumps(prices.to_json()))).to_json() == prices.to_json()


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"output": "1"}, "input"),
        ({"input": "1"}, "output"),
        ({"input": "1", "output": 1.5}, "output"),
        ({"input": "1", "output": "1", "cached": "1"}, "cached"),
        ({"input": "x", "output": "1"}, "input"),
    ],
)
def test_from_json_rejects(data, param):
    with pytest.raises(PriceError) as info:
        Prices.from_json(data)
    assert info.value.param == param


def test_float_is_refused_by_name():
    with pytest.raises(PriceError, match="not float"):
        parse_price(2.5, "input")


def test_prices_reject_float_and_sub_micro_decimals():
    with pytest.raises(PriceError):
        Prices(input=2.5, output=Decimal(1))  # type: ignore[arg-type]
    with pytest.raises(PriceError):
        Prices(input=Decimal("0.0000001"), output=Decimal(1))


def test_is_free():
    assert Prices(Decimal(0), Decimal("0.0")).is_free
    assert not Prices(Decimal(0), Decimal(0), reasoning=Decimal("0.000001")).is_free
    assert not Prices(Decimal(1), Decimal(0)).is_free


def test_fallback_prices():
    assert FALLBACK_PRICE_USD_PER_M == Decimal(20)
    assert fallback_prices() == Prices(Decimal(20), Decimal(20))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt_tokens": -1},
        {"prompt_tokens": 1.0},
        {"prompt_tokens": True},
        {"prompt_tokens": 2, "cached_tokens": 2, "cache_write_tokens": 1},
        {"completion_tokens": 1, "reasoning_tokens": 2},
        {"cached_tokens": 1},
    ],
)
def test_token_usage_validation(kwargs):
    with pytest.raises(ValueError):
        TokenUsage(**kwargs)


def test_cost_accept_examples():
    gpt = Prices(Decimal("2.50"), Decimal(10))
    assert cost_micros(gpt, TokenUsage(prompt_tokens=1000, completion_tokens=500)) == 7500
    assert cost_micros(Prices(Decimal("0.10"), Decimal(0)), TokenUsage(prompt_tokens=3)) == 1
    assert cost_micros(gpt, TokenUsage()) == 0


def test_cost_uses_class_prices_and_fallbacks():
    prices = Prices(Decimal(1), Decimal(2), Decimal("0.5"), Decimal(3), Decimal(4))
    usage = TokenUsage(
        100, cached_tokens=10, cache_write_tokens=20, completion_tokens=50, reasoning_tokens=5
    )
    assert cost_micros(prices, usage) == 70 * 1 + 5 + 60 + 45 * 2 + 5 * 4
    # Without class prices every token is billed at the plain input/output rate.
    assert cost_micros(Prices(Decimal(1), Decimal(2)), usage) == 100 + 100


def test_cost_rounds_up_once_on_total():
    prices = Prices(Decimal("0.4"), Decimal("0.4"))
    # Rounding each class separately would give 2, each token 3.
    assert cost_micros(prices, TokenUsage(prompt_tokens=1, completion_tokens=1)) == 1
    assert cost_micros(prices, TokenUsage(prompt_tokens=2, completion_tokens=1)) == 2
    assert cost_micros(Prices(Decimal("0.000001"), Decimal(0)), TokenUsage(prompt_tokens=1)) == 1


def test_cost_is_exact_for_huge_counts():
    prices = Prices(Decimal("9999.999999"), Decimal("0.000001"))
    usage = TokenUsage(prompt_tokens=10**15, completion_tokens=10**15 + 1)
    assert cost_micros(prices, usage) == 9999999999 * 10**9 + 10**9 + 1


_price = st.decimals(min_value=0, max_value=10000, places=6, allow_nan=False, allow_infinity=False)
_opt_price = st.none() | _price
_count = st.integers(min_value=0, max_value=10**9)


def _usage(uncached, cached, write, plain, reasoning):
    return TokenUsage(
        prompt_tokens=uncached + cached + write,
        cached_tokens=cached,
        cache_write_tokens=write,
        completion_tokens=plain + reasoning,
        reasoning_tokens=reasoning,
    )


@settings(max_examples=1000, deadline=None)
@given(
    prices=st.builds(Prices, _price, _price, _opt_price, _opt_price, _opt_price),
    counts=st.lists(_count, min_size=5, max_size=5),
    which=st.integers(0, 4),
    extra=st.integers(1, 10**6),
)
def test_cost_monotonic_in_each_class_property(prices, counts, which, extra):
    base = cost_micros(prices, _usage(*counts))
    bumped = list(counts)
    bumped[which] += extra
    assert 0 <= base <= cost_micros(prices, _usage(*bumped))


def test_cost_monotonic_seeded_100k():
    rng = random.Random(20240601)
    for _ in range(100_000):
        prices = Prices(
            *(Decimal(rng.randrange(0, 10**10 + 1)).scaleb(-6) for _ in range(2)),
            *(
                None if rng.random() < 0.3 else Decimal(rng.randrange(0, 10**7)).scaleb(-6)
                for _ in range(3)
            ),
        )
        counts = [rng.randrange(0, 10 ** rng.randrange(1, 10)) for _ in range(5)]
        base = cost_micros(prices, _usage(*counts))
        counts[rng.randrange(5)] += rng.randrange(1, 1000)
        assert 0 <= base <= cost_micros(prices, _usage(*counts))


def test_hold_micros():
    prices = Prices(Decimal("2.5"), Decimal(10), reasoning=Decimal(40))
    assert hold_micros(prices, 1000, 100) == 2500 + 4000
    assert hold_micros(Prices(Decimal("2.5"), Decimal(10), reasoning=Decimal(1)), 1000, 100) == 3500
    assert hold_micros(Prices(Decimal("0.1"), Decimal(0)), 1, 0) == 1
    with pytest.raises(ValueError):
        hold_micros(prices, -1, 0)


@settings(max_examples=300, deadline=None)
@given(
    prices=st.builds(Prices, _price, _price, _opt_price, _opt_price, _opt_price),
    counts=st.lists(_count, min_size=5, max_size=5),
)
def test_hold_covers_actual_cost_when_estimates_hold(prices, counts):
    usage = _usage(*counts)
    hold = hold_micros(prices, usage.prompt_tokens, usage.completion_tokens)
    # Cached or cache-write input may be dearer than input, so compare with those priced at input.
    plain = Prices(prices.input, prices.output, reasoning=prices.reasoning)
    assert hold >= cost_micros(plain, usage)


@pytest.mark.parametrize(
    ("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("é" * 8, 2)]
)
def test_estimate_text_tokens(text, tokens):
    assert estimate_text_tokens(text) == tokens


def test_estimate_input_tokens_counts_everything():
    messages = [
        {"role": "system", "content": "abc"},  # 3 bytes
        {
            "role": "user",
            "name": "bob",
            "content": [  # name 3 bytes
                {"type": "text", "text": "é"},  # 2 bytes
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                {"type": "image_url", "image_url": {"url": "data:..."}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"a":1}'},
                },  # 1 + 7 bytes
            ],
        },
    ]
    assert estimate_input_tokens(messages) == -(-16 // 3) + 3 * 8 + 2 * 1600


def test_estimate_input_tokens_is_at_least_text_estimate():
    text = "hello world, this is a long prompt " * 50
    assert estimate_input_tokens([{"role": "user", "content": text}]) >= estimate_text_tokens(text)


# fmt: off
JUNK_MESSAGES = [
    None, "x", [None, 1, "x"], [{"content": None}], [{"content": "\ud800"}],
    [{"content": [None, 1, {"type": 5}, {"type": "text", "text": None}]}],
    [{"tool_calls": [None, {"function": None}, {"function": {"arguments": {"a": object()}}}]}],
    [{"name": 5, "tool_calls": "junk", "function_call": "junk"}],
]
# fmt: on


@pytest.mark.parametrize("messages", JUNK_MESSAGES)
def test_estimate_input_tokens_survives_junk(messages):
    assert estimate_input_tokens(messages) >= 0


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_estimate_input_tokens_never_raises(junk):
    assert estimate_input_tokens(junk if isinstance(junk, list) else [junk]) >= 0


def test_output_limit_precedence():
    full = {"max_completion_tokens": 10, "max_tokens": 20, "max_output_tokens": 30}
    assert output_limit(full, 40) == 10
    assert output_limit({"max_tokens": 20, "max_output_tokens": 30}, 40) == 20
    assert output_limit({"max_output_tokens": 30}, 40) == 30
    assert output_limit({"max_tokens": None}, 40) == 40
    assert output_limit({}, None) == 4096
    assert output_limit({}, None, default=7) == 7


# fmt: off
PREMIUM = [
    "openai/gpt-4.1", "anthropic/claude-opus-4", "google/gemini-2.5-pro", "google/gemini-1.5-pro-002",
    "GPT-5-mini", "o3-mini", "vendor/o1", "anthropic/claude-sonnet-4", "anthropic/claude-3-haiku",
    "cohere/command-r-plus", "mistralai/Mixtral-8x22B-Instruct", "router/openai/o4-mini",
]
NOT_PREMIUM = [
    "meta-llama/llama-3.1-8b-instruct", "google/gemini-1.5-flash", "openai/gpt-3.5-turbo",
    "anthropic/claude-haiku-4.5", "cohere/command-r", "mistralai/mixtral-8x7b", "qwen/qwen3-32b", "",
]
# fmt: on


@pytest.mark.parametrize(
    ("model", "premium"), [(m, True) for m in PREMIUM] + [(m, False) for m in NOT_PREMIUM]
)
def test_is_premium_model(model, premium):
    assert is_premium_model(model) is premium
