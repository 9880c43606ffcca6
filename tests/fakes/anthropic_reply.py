"""What FakeAnthropic answers: the Behaviour script and the reply.

Shapes follow the public Messages API reference: a Message with content blocks
(thinking, redacted_thinking, text, tool_use) and the stream events that build it.
Request validation is in anthropic_validation.py, request reading in anthropic_content.py;
``Reply`` and ``tool_use_id`` stay here because tests/e2e/matrix_support.py patches this
module's ``tool_use_id`` to learn the ids made.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from typing import Any

from .anthropic_content import (
    _blocks,
    _text,
    _words,
    input_tokens,
    thinking_enabled,
    thinking_signature,
)

# Names other modules may import from here are re-exported with ``as``.
from .anthropic_validation import ASSISTANT_BLOCKS as ASSISTANT_BLOCKS
from .anthropic_validation import IMAGE_MEDIA_TYPES as IMAGE_MEDIA_TYPES
from .anthropic_validation import USER_BLOCKS as USER_BLOCKS
from .anthropic_validation import validate
from .text_chunks import _fragments, _groups, _pieces

__all__ = ["Behaviour", "Reply", "input_tokens", "thinking_signature", "validate"]

DEFAULT_THINKING = "Let me think this through."
INTERLEAVED_BETA = "interleaved-thinking"
_ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Behaviour:
    """How one POST /v1/messages is answered; every field is optional."""

    status: int = 200
    error_message: str | None = None
    retry_after: int | None = None          # seconds; a 429 always carries a retry-after
    text: str | None = None                 # default: "Echo: " + the last user text
    # (name, input) per tool_use block; default: the first (or tool_choice's) tool with {}
    # when tools are on offer, tool_choice is not none and no tool_result just came in.
    tool_uses: tuple[tuple[str, dict[str, Any]], ...] = ()
    # Default: a short thinking block when the request enables thinking (after tool
    # results only with the interleaved-thinking beta, as the real API does).
    thinking: str | None = None
    redacted_thinking: str | None = None    # the block's opaque ``data``
    input_tokens: int | None = None         # default: words of system + messages
    cache_read: int = 0                     # reported beside input_tokens, not within it
    cache_creation: int = 0
    stop_reason: str | None = None          # e.g. "refusal", "pause_turn"
    chunk_words: int = 1                    # words per text_delta / thinking_delta
    ping: bool = True                       # a ping event right after message_start
    # Both count every event written, message_start and ping included.
    fail_mid_stream_after: int | None = None    # then close the connection abruptly
    error_event_after: int | None = None        # then an overloaded_error event, then EOF
    delay_before_headers: float = 0.0
    chunk_interval: float = 0.0
    close_connection: bool = False


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def tool_use_id() -> str:
    return "toolu_" + secrets.token_hex(12)


@dataclass(frozen=True)
class Reply:
    """One assistant message, rendered either whole or as its stream of events."""

    id: str
    model: str
    blocks: tuple[dict[str, Any], ...]
    stop_reason: str
    stop_sequence: str | None
    input_tokens: int
    cache_read: int
    cache_creation: int
    output_tokens: int
    thinking_tokens: int

    @classmethod
    def build(cls, body: dict[str, Any], behaviour: Behaviour, betas: str) -> Reply:
        messages = body["messages"]
        last_user = next(m for m in reversed(messages) if m["role"] == "user")
        answering_results = any(b.get("type") == "tool_result"
                                for b in _blocks(last_user["content"]))
        thinking = behaviour.thinking
        # Without the interleaved-thinking beta, Claude thinks only at the start of a turn,
        # not again after each tool result.
        if thinking is None and thinking_enabled(body) \
                and (not answering_results or INTERLEAVED_BETA in betas):
            thinking = DEFAULT_THINKING
        tool_uses = behaviour.tool_uses or _default_tool_use(body, answering_results)
        text = behaviour.text
        if text is None and not tool_uses:
            text = "Echo: " + _text(last_user["content"])

        stop_reason, stop_sequence = ("tool_use" if tool_uses else "end_turn"), None
        for sequence in body.get("stop_sequences") or ():
            if text is not None and isinstance(sequence, str) and sequence and sequence in text:
                text, tool_uses = text[:text.index(sequence)], ()
                stop_reason, stop_sequence = "stop_sequence", sequence
                break
        thinking_words = _words(thinking or "")
        budget = body["max_tokens"] - thinking_words
        if text is not None and _words(text) > budget:
            text, tool_uses = "".join(_pieces(text)[:max(budget, 0)]), ()
            stop_reason = "max_tokens"

        blocks: list[dict[str, Any]] = []
        if thinking is not None:
            blocks.append({"type": "thinking", "thinking": thinking,
                           "signature": thinking_signature(thinking)})
        if behaviour.redacted_thinking is not None:
            blocks.append({"type": "redacted_thinking", "data": behaviour.redacted_thinking})
        if text is not None:
            blocks.append({"type": "text", "text": text})
        blocks += [{"type": "tool_use", "id": tool_use_id(), "name": name, "input": arguments}
                   for name, arguments in tool_uses]
        return cls(
            id=new_id("msg_01", 22), model=body["model"], blocks=tuple(blocks),
            stop_reason=behaviour.stop_reason or stop_reason, stop_sequence=stop_sequence,
            input_tokens=(behaviour.input_tokens if behaviour.input_tokens is not None
                          else input_tokens(body)),
            cache_read=behaviour.cache_read, cache_creation=behaviour.cache_creation,
            output_tokens=thinking_words + _words(text or "") + len(tool_uses),
            thinking_tokens=thinking_words)

    def usage(self, output_tokens: int) -> dict[str, Any]:
        usage = {"input_tokens": self.input_tokens,
                 "cache_creation_input_tokens": self.cache_creation,
                 "cache_read_input_tokens": self.cache_read,
                 "cache_creation": {"ephemeral_5m_input_tokens": self.cache_creation,
                                    "ephemeral_1h_input_tokens": 0},
                 "output_tokens": output_tokens,
                 "service_tier": "standard"}
        if self.thinking_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": self.thinking_tokens}
        return usage

    def message(self, *, streaming: bool = False) -> dict[str, Any]:
        """The Message object; at message_start its content is empty and stop_reason null."""
        usage = self.usage(min(1, self.output_tokens) if streaming else self.output_tokens)
        if streaming:
            usage.pop("output_tokens_details", None)  # only the final count breaks it down
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [] if streaming else list(self.blocks),
                "stop_reason": None if streaming else self.stop_reason,
                "stop_sequence": None if streaming else self.stop_sequence,
                # message_start reports the first token or so; message_delta the total.
                "usage": usage}

    def events(self, chunk_words: int, ping: bool) -> list[tuple[str, dict[str, Any], int]]:
        """(event name, data, output tokens it carries) for the whole stream, in order."""
        out: list[tuple[str, dict[str, Any], int]] = [
            ("message_start", {"type": "message_start", "message": self.message(streaming=True)},
             0)]
        if ping:
            out.append(("ping", {"type": "ping"}, 0))
        for index, block in enumerate(self.blocks):
            out.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                "content_block": _opening(block)}, 0))
            out += [("content_block_delta",
                     {"type": "content_block_delta", "index": index, "delta": delta}, tokens)
                    for delta, tokens in _deltas(block, chunk_words)]
            out.append(("content_block_stop", {"type": "content_block_stop", "index": index}, 0))
        usage = self.usage(self.output_tokens)
        del usage["cache_creation"], usage["service_tier"]
        out.append(("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": self.stop_reason,
                                                "stop_sequence": self.stop_sequence},
                                      "usage": usage}, 0))
        out.append(("message_stop", {"type": "message_stop"}, 0))
        return out


def _opening(block: dict[str, Any]) -> dict[str, Any]:
    """A block as content_block_start carries it: everything streamed later left empty."""
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": ""}
    if kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if kind == "tool_use":
        return {**block, "input": {}}
    return dict(block)  # redacted_thinking arrives whole


def _deltas(block: dict[str, Any], chunk_words: int) -> list[tuple[dict[str, Any], int]]:
    kind = block["type"]
    if kind == "text":
        return [({"type": "text_delta", "text": p}, _words(p))
                for p in _groups(block["text"], chunk_words)]
    if kind == "thinking":
        return [({"type": "thinking_delta", "thinking": p}, _words(p))
                for p in _groups(block["thinking"], chunk_words)] \
            + [({"type": "signature_delta", "signature": block["signature"]}, 0)]
    if kind == "tool_use":
        # The real stream opens every tool input with an empty fragment.
        fragments = ["", *_fragments(json.dumps(block["input"]))]
        return [({"type": "input_json_delta", "partial_json": f}, 0 if i else 1)
                for i, f in enumerate(fragments)]
    return []


def _default_tool_use(body: dict[str, Any],
                      answering_results: bool) -> tuple[tuple[str, dict[str, Any]], ...]:
    """With tools on offer, call the chosen (else first) one unless results just came in."""
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and "name" in t]
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none" or answering_results:
        return ()
    name = choice["name"] if choice.get("type") == "tool" else tools[0]["name"]
    return ((name, {}),)
