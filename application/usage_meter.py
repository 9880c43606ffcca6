"""Token usage: as the provider reports it, or estimated from text when it does not."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.pricing import TokenUsage, estimate_text_tokens

_decode = msgspec.json.Decoder().decode


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_from(payload: Any) -> TokenUsage | None:
    """The provider-reported usage object, or None when absent or unusable."""
    if not isinstance(payload, dict) or not isinstance(payload.get("usage"), dict):
        return None
    usage = payload["usage"]
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    reasoning = (_int(completion_details.get("reasoning_tokens"))
                 if isinstance(completion_details, dict) else 0)
    try:
        return TokenUsage(prompt_tokens=prompt, cached_tokens=min(cached, prompt),
                          completion_tokens=completion,
                          reasoning_tokens=min(reasoning, completion))
    except ValueError:
        return None


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
