"""What every translation direction shares: stop-reason and thinking tables, SSE framing.

Pure: no I/O and no clock; ids and times are passed in, so a translation is repeatable
byte for byte (the golden-file tests rely on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

encode = msgspec.json.encode

# Anthropic stop_reason -> OpenAI finish_reason (9.11).
OPENAI_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                 "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop"}
# OpenAI finish_reason -> Anthropic stop_reason (9.11); a stop with a matched stop sequence
# becomes "stop_sequence" where the caller knows the sequence.
ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                  "function_call": "tool_use", "content_filter": "refusal"}
# reasoning_effort -> thinking budget tokens (9.11, default), always kept below max_tokens.
EFFORT_BUDGET = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
MIN_THINKING_BUDGET = 1024


def effort_for_budget(budget: int) -> str:
    """An Anthropic thinking budget as an OpenAI reasoning effort (9.11, default)."""
    if budget <= 2048:
        return "low"
    if budget <= 8192:
        return "medium"
    return "high"


@dataclass
class Translated:
    """A request body in the upstream's format, and what the translation had to change."""

    body: dict[str, Any]
    dropped: list[str] = field(default_factory=list)  # -> X-Gatewayz-Dropped-Params
    adjusted: list[str] = field(default_factory=list)  # -> X-Gatewayz-Adjusted-Params


def sse_data(payload: Any) -> bytes:
    """One OpenAI-format event: ``data: <json>`` and a blank line."""
    return b"data: " + encode(payload) + b"\n\n"


def sse_event(name: str, payload: Any) -> bytes:
    """One Anthropic- or Responses-format event: ``event: <name>``, its data, a blank line."""
    return b"event: " + name.encode() + b"\ndata: " + encode(payload) + b"\n\n"
