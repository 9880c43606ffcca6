"""How FakeAnthropic reads a request: its content blocks, their text and token count.

Also whether thinking is on and the thinking signature, which both the validation and
the reply need.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any


def thinking_signature(thinking: str) -> str:
    """The fake's signature for a thinking text; a passed-back block is checked against it."""
    return base64.b64encode(hashlib.sha256(b"fake-thinking:" + thinking.encode()).digest()).decode()


def _words(text: str) -> int:
    return len(text.split())


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _text(content: Any) -> str:
    """Text blocks, and the text inside tool_result blocks, joined by spaces."""
    parts = []
    for block in _blocks(content):
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_result":
            parts.append(_text(block.get("content", "")))
    return " ".join(p for p in parts if p)


def input_tokens(body: dict[str, Any]) -> int:
    """Words of all text in the system prompt and the messages: the fake's tokenizer."""
    total = _words(_text(body.get("system", "")))
    for message in body.get("messages", []):
        total += _words(_text(message.get("content")))
    return total


def thinking_enabled(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
