"""Pricing rules: prices in USD per million tokens, costs in int micro-USD rounded up once, on the total."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any

# The estimators live in domain.hold_sizing; re-exported here, where callers always found them.
from domain.hold_sizing import estimate_input_tokens as estimate_input_tokens
from domain.hold_sizing import estimate_request_input_tokens as estimate_request_input_tokens
from domain.hold_sizing import estimate_text_tokens as estimate_text_tokens
from domain.hold_sizing import output_limit as output_limit

# 1 USD per million tokens is exactly 1 micro-USD per token, so a USD/M price
# is a per-token price in micros. Scaling by 10**6 turns any valid price (at
# most 6 decimal places) into an exact integer, so cost arithmetic is int-only.
_PLACES = 6
_SCALE = 10**_PLACES
MAX_PRICE_USD_PER_M = Decimal(10000)
_PRICE_RE = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,40})?")

FALLBACK_PRICE_USD_PER_M = Decimal(20)


class PriceError(ValueError):
    """A price that is malformed or out of range; `param` names the field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def _check_decimal(value: Decimal, param: str) -> Decimal:
    if not value.is_finite():
        raise PriceError(f"{param} must be a finite number", param)
    if value < 0 or value > MAX_PRICE_USD_PER_M:
        raise PriceError(
            f"{param} must be between 0 and {MAX_PRICE_USD_PER_M} USD per million tokens", param
        )
    # Trailing zeros ("2.5000000") are harmless; only real sub-micro precision is refused.
    if value != value.quantize(Decimal(1).scaleb(-_PLACES)):
        raise PriceError(f"{param} must have at most {_PLACES} decimal places", param)
    # "-0" and "0.000" both become a plain, positive zero.
    return value if value else Decimal(0)


def parse_price(value: str | int | Decimal, param: str) -> Decimal:
    """Validate a USD-per-million-tokens price given as a decimal string or int."""
    # bool is an int subclass and float is inexact: neither is a price.
    if isinstance(value, (bool, float)):
        raise PriceError(
            f"{param} must be a decimal string or an integer, not {type(value).__name__}", param
        )
    if isinstance(value, int):
        if value < 0 or value > MAX_PRICE_USD_PER_M:
            raise PriceError(
                f"{param} must be between 0 and {MAX_PRICE_USD_PER_M} USD per million tokens", param
            )
        return Decimal(value)
    if isinstance(value, Decimal):
        return _check_decimal(value, param)
    if not isinstance(value, str):
        raise PriceError(f"{param} must be a decimal string or an integer", param)
    # Decimal() alone would accept "1e3", " 1", "1_0", "NaN" and "-1"; prices are plain decimals.
    if not _PRICE_RE.fullmatch(value):
        raise PriceError(f'{param} must be a non-negative decimal string such as "2.5"', param)
    try:
        parsed = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex already guarantees a valid literal
        raise PriceError(f"{param} is not a valid decimal", param) from None
    return _check_decimal(parsed, param)


def format_price(value: Decimal) -> str:
    """Render a price as a plain decimal string without exponent or trailing zeros."""
    if not value:
        return "0"
    return format(value.normalize(), "f")


@dataclass(frozen=True)
class Prices:
    """Per-token prices of one model in USD per million tokens; None falls back to input/output."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name not in ("input", "output"):
                continue
            if not isinstance(value, Decimal):
                raise PriceError(f"{f.name} must be a Decimal", f.name)
            object.__setattr__(self, f.name, _check_decimal(value, f.name))

    def to_json(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = format_price(value)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Prices:
        if not isinstance(d, dict):
            raise PriceError("prices must be an object", "prices")
        known = {f.name for f in fields(cls)}
        for key in d:
            # A misspelt optional price would silently bill at the input/output rate.
            if key not in known:
                raise PriceError(f"unknown price field {key!r}", str(key))
        for required in ("input", "output"):
            if d.get(required) is None:
                raise PriceError(f"{required} price is required", required)
        values = {k: parse_price(v, k) for k, v in d.items() if v is not None}
        return cls(**values)

    @property
    def is_free(self) -> bool:
        return all(not getattr(self, f.name) for f in fields(self))


def fallback_prices() -> Prices:
    """Prices charged for a model without a configured price: deliberately expensive."""
    return Prices(input=FALLBACK_PRICE_USD_PER_M, output=FALLBACK_PRICE_USD_PER_M)


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


_COUNT_FIELDS = ("prompt_tokens", "cached_tokens", "cache_write_tokens", "completion_tokens",
                 "reasoning_tokens")


@dataclass(frozen=True)
class TokenUsage:
    """Token counts in OpenAI semantics: prompt includes cached/cache-write, completion includes reasoning.

    ``clamped`` records that the provider reported a count above the sane bound and it was cut
    down to it (application.usage_meter); it is not a count and takes no part in the cost.
    """

    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    clamped: bool = False

    def __post_init__(self) -> None:
        for name in _COUNT_FIELDS:
            _check_count(getattr(self, name), name)
        if not isinstance(self.clamped, bool):
            raise ValueError("clamped must be a boolean")
        if self.cached_tokens + self.cache_write_tokens > self.prompt_tokens:
            raise ValueError("cached_tokens + cache_write_tokens must not exceed prompt_tokens")
        if self.reasoning_tokens > self.completion_tokens:
            raise ValueError("reasoning_tokens must not exceed completion_tokens")


def _scaled(price: Decimal) -> int:
    # Exact: Prices guarantees at most 6 decimal places and at most 10000.
    return int(price.scaleb(_PLACES))


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def cost_micros(prices: Prices, usage: TokenUsage) -> int:
    """Exact cost of a request in micro-USD, rounded up once on the total."""
    input_p = _scaled(prices.input)
    output_p = _scaled(prices.output)
    cached_p = input_p if prices.cached_input is None else _scaled(prices.cached_input)
    write_p = input_p if prices.cache_write is None else _scaled(prices.cache_write)
    reasoning_p = output_p if prices.reasoning is None else _scaled(prices.reasoning)
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    plain_output = usage.completion_tokens - usage.reasoning_tokens
    total = (
        uncached * input_p
        + usage.cached_tokens * cached_p
        + usage.cache_write_tokens * write_p
        + plain_output * output_p
        + usage.reasoning_tokens * reasoning_p
    )
    return _ceil_div(total, _SCALE)


def hold_micros(prices: Prices, estimated_input_tokens: int, output_limit: int,
                n: int = 1) -> int:
    """Amount to reserve before a call: the dearest price any usage within the limits can reach.

    Every estimated input token at the dearest input rate (plain, cached or cache write), and
    ``n`` choices of up to ``output_limit`` tokens each at the dearer of output and reasoning,
    rounded up once on the total.
    """
    _check_count(estimated_input_tokens, "estimated_input_tokens")
    _check_count(output_limit, "output_limit")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError("n must be a positive integer")
    input_p = max(_scaled(p) for p in (prices.input, prices.cached_input, prices.cache_write)
                  if p is not None)
    output_p = max(_scaled(p) for p in (prices.output, prices.reasoning) if p is not None)
    total = estimated_input_tokens * input_p + n * output_limit * output_p
    return _ceil_div(total, _SCALE)


PREMIUM_PATTERNS: tuple[str, ...] = (
    "gpt-4*",
    "gpt-5*",
    "o1*",
    "o3*",
    "o4*",
    "claude-3*",
    "*opus*",
    "*sonnet-4*",
    "gemini-*-pro*",
    "gemini-2*",
    "command-r-plus*",
    "mixtral-8x22b*",
)


def is_premium_model(model_id: str) -> bool:
    """Whether a model belongs to a premium family, ignoring any `org/` prefix and case."""
    name = model_id.rsplit("/", 1)[-1].lower()
    # fnmatchcase: fnmatch would apply the platform's path case rules.
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in PREMIUM_PATTERNS)
