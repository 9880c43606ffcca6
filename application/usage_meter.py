"""Token usage: as the provider reports it, or estimated from text when it does not."""

from __future__ import annotations

import math
from typing import Any

import msgspec

from domain.pricing import TokenUsage, estimate_text_tokens

_decode = msgspec.json.Decoder().decode

# Above any real context window (and below 2**31): a provider reporting more is wrong or
# hostile, and its number must not reach cost arithmetic or a database column unbounded.
MAX_REPORTED_TOKENS = 1_000_000_000


class _Counter:
    """Reads reported counts: a number is rounded up (a float such as 12.0 or 1e20 is still
    the provider's claim, not nothing, which would under-charge); anything else or a
    negative -> 0; above the bound -> the bound, flagged."""

    __slots__ = ("clamped",)

    def __init__(self) -> None:
        self.clamped = False

    def __call__(self, value: Any) -> int:
        if isinstance(value, float):
            if value != value or value < 0:  # NaN or negative
                return 0
            value = MAX_REPORTED_TOKENS + 1 if value > MAX_REPORTED_TOKENS else math.ceil(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return 0
        if value > MAX_REPORTED_TOKENS:
            self.clamped = True
            return MAX_REPORTED_TOKENS
        return value


def usage_from(payload: Any) -> TokenUsage | None:
    """The provider-reported usage object, or None when absent or unusable. Never raises;
    every count is clamped to MAX_REPORTED_TOKENS and ``clamped`` says whether one was."""
    if not isinstance(payload, dict) or not isinstance(payload.get("usage"), dict):
        return None
    usage = payload["usage"]
    count = _Counter()
    prompt = count(usage.get("prompt_tokens"))
    completion = count(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    reasoning = (count(completion_details.get("reasoning_tokens"))
                 if isinstance(completion_details, dict) else 0)
    try:
        return TokenUsage(prompt_tokens=prompt, cached_tokens=min(cached, prompt),
                          completion_tokens=completion,
                          reasoning_tokens=min(reasoning, completion), clamped=count.clamped)
    except ValueError:  # pragma: no cover - the counts above always make a valid usage
        return None


def anthropic_usage(usage: Any) -> TokenUsage | None:
    """An Anthropic usage object in the gateway's (OpenAI) semantics (9.11): the prompt is
    the uncached input plus cache reads and cache writes. Bounded like ``usage_from``."""
    if not isinstance(usage, dict):
        return None
    count = _Counter()
    uncached = count(usage.get("input_tokens"))
    read = count(usage.get("cache_read_input_tokens"))
    written = count(usage.get("cache_creation_input_tokens"))
    output = count(usage.get("output_tokens"))
    prompt = uncached + read + written
    clamped = count.clamped or prompt > MAX_REPORTED_TOKENS
    if prompt > MAX_REPORTED_TOKENS:  # each part was bounded, their sum must be too
        prompt = MAX_REPORTED_TOKENS
        read = min(read, prompt)
        written = min(written, prompt - read)
    return TokenUsage(prompt_tokens=prompt, cached_tokens=read, cache_write_tokens=written,
                      completion_tokens=output, clamped=clamped)


def message_text(messages: list) -> str:
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content
                         if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "".join(parts)


def estimated_usage(messages: list, output_text: str) -> TokenUsage:
    """The fallback when the provider reports nothing: 1 token per 4 characters, rounded up."""
    return TokenUsage(prompt_tokens=estimate_text_tokens(message_text(messages)),
                      completion_tokens=estimate_text_tokens(output_text))
