"""What FakeAnthropic answers: the Behaviour script, request validation and the reply.

Shapes follow the public Messages API reference: a Message with content blocks
(thinking, redacted_thinking, text, tool_use) and the stream events that build it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import string
from dataclasses import dataclass
from typing import Any

from .openai_upstream import _fragments, _groups, _pieces

__all__ = ["Behaviour", "Reply", "input_tokens", "thinking_signature", "validate"]

DEFAULT_THINKING = "Let me think this through."
INTERLEAVED_BETA = "interleaved-thinking"
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
USER_BLOCKS = {"text", "image", "document", "tool_result", "search_result"}
ASSISTANT_BLOCKS = {"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use",
                    "web_search_tool_result"}
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


def validate(body: Any, *, counting: bool = False) -> str | None:
    """The invalid_request_error message the real API would give, or None if acceptable."""
    if not isinstance(body, dict):
        return "There was an error parsing the body of your request."
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not counting:
        if max_tokens is None:
            return "max_tokens: Field required"
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            return "max_tokens: Input should be greater than or equal to 1"
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict) \
                or thinking.get("type") not in ("enabled", "disabled", "adaptive"):
            return "thinking: Input tag found using 'type' does not match any expected tags"
        budget = thinking.get("budget_tokens")
        if thinking.get("type") == "enabled":
            if not isinstance(budget, int) or budget < 1024:
                return "thinking.enabled.budget_tokens: Input should be greater than or " \
                       "equal to 1024"
            if not counting and budget >= max_tokens:
                return "`max_tokens` must be greater than `thinking.budget_tokens`. Please " \
                       "consult our documentation at https://docs.claude.com/en/docs/" \
                       "build-with-claude/extended-thinking#max-tokens-and-context-window-size"
    temperature = body.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
            return "temperature: Input should be less than or equal to 1" \
                if isinstance(temperature, int | float) and temperature > 1 \
                else "temperature: Input should be greater than or equal to 0"
        if thinking_enabled(body) and temperature != 1:
            return "`temperature` may only be set to 1 when thinking is enabled. Please " \
                   "consult our documentation at https://docs.claude.com/en/docs/" \
                   "build-with-claude/extended-thinking#feature-compatibility"
    return _validate_tools(body) or _validate_messages(body)


def _validate_tools(body: dict[str, Any]) -> str | None:
    tools = body.get("tools", [])
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    for i, tool in enumerate(tools):
        # Server tools (web_search_..., bash_...) carry their own type and no schema.
        if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
            continue
        if not isinstance(tool.get("name"), str):
            return f"tools.{i}.custom.name: Field required"
        if not isinstance(tool.get("input_schema"), dict):
            return f"tools.{i}.custom.input_schema: Field required"
    choice = body.get("tool_choice")
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        return "tool_choice: Input tag found using 'type' does not match any expected tags"
    if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
        return "tool_choice.tool.name: Field required"
    if choice["type"] in ("any", "tool") and thinking_enabled(body):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def _validate_messages(body: dict[str, Any]) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "messages: Field required"
    if not messages:
        return "messages: at least one message is required"
    previous = None
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if i == 0 and role != "user":
            return 'messages: first message must use the "user" role'
        if role == previous:
            return (f'messages: roles must alternate between "user" and "assistant", '
                    f'but found multiple "{role}" roles in a row')
        previous = role
        content = message.get("content")
        last = i == len(messages) - 1
        if not isinstance(content, str | list):
            return f"messages.{i}.content: Field required"
        if not content and not (last and role == "assistant"):
            return (f"messages.{i}: all messages must have non-empty content except for "
                    f"the optional final assistant message")
        for j, block in enumerate(_blocks(content) if isinstance(content, list) else []):
            problem = _check_block(block, role, f"messages.{i}.content.{j}")
            if problem:
                return problem
    return _validate_pairing(messages) or _validate_thinking_turn(body, messages)


def _check_block(block: dict[str, Any], role: str, where: str) -> str | None:
    kind = block.get("type")
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    if kind not in allowed:
        return f"{where}: Input tag '{kind}' found using 'type' is not allowed in a {role} turn"
    if kind == "text" and not isinstance(block.get("text"), str):
        return f"{where}.text.text: Field required"
    if kind == "image":
        source = block.get("source")
        if not isinstance(source, dict):
            return f"{where}.image.source: Field required"
        if source.get("type") == "base64":
            if source.get("media_type") not in IMAGE_MEDIA_TYPES:
                return (f"{where}.image.source.base64.media_type: Input should be "
                        "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'")
            if not isinstance(source.get("data"), str):
                return f"{where}.image.source.base64.data: Field required"
        elif source.get("type") == "url":
            if not isinstance(source.get("url"), str):
                return f"{where}.image.source.url.url: Field required"
        elif source.get("type") != "file":
            return f"{where}.image.source: Input tag does not match any of the expected tags"
    if kind == "tool_use" and not (isinstance(block.get("id"), str)
                                   and isinstance(block.get("name"), str)
                                   and isinstance(block.get("input"), dict)):
        return f"{where}.tool_use: id, name and input are required"
    if kind == "thinking":
        if not isinstance(block.get("signature"), str):
            return f"{where}.thinking.signature: Field required"
        if block["signature"] != thinking_signature(str(block.get("thinking", ""))):
            return f"{where}: Invalid `signature` in `thinking` block"
    return None


def _ids(message: dict[str, Any], kind: str, key: str) -> list[str]:
    return [str(b.get(key)) for b in _blocks(message.get("content")) if b.get("type") == kind]


def _validate_pairing(messages: list[dict[str, Any]]) -> str | None:
    """tool_result answers a tool_use of the message before; every tool_use gets answered."""
    for i, message in enumerate(messages):
        if message["role"] == "user":
            offered = set(_ids(messages[i - 1], "tool_use", "id")) if i else set()
            for j, block in enumerate(_blocks(message["content"])):
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in offered:
                    return (f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                            f"`tool_result` blocks: {block.get('tool_use_id')}. Each "
                            f"`tool_result` block must have a corresponding `tool_use` block "
                            f"in the previous message.")
        elif i + 1 < len(messages):
            answered = set(_ids(messages[i + 1], "tool_result", "tool_use_id"))
            missing = [u for u in _ids(message, "tool_use", "id") if u not in answered]
            if missing:
                return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                        f"immediately after: {', '.join(missing)}. Each `tool_use` block must "
                        f"have a corresponding `tool_result` block in the next message.")
    return None


def _validate_thinking_turn(body: dict[str, Any], messages: list[dict[str, Any]]) -> str | None:
    """With thinking on, a tool-using final assistant turn must open with its thinking.

    The turn is every assistant message since the last user message that is more than
    tool results; this is how the real API refuses a client that dropped thinking blocks.
    """
    if not thinking_enabled(body):
        return None
    start = 0
    for i, message in enumerate(messages):
        kinds = {b.get("type") for b in _blocks(message["content"])}
        if message["role"] == "user" and kinds - {"tool_result"}:
            start = i + 1
    turn = [i for i in range(start, len(messages)) if messages[i]["role"] == "assistant"]
    if not turn or not any(_ids(messages[i], "tool_use", "id") for i in turn):
        return None
    first = _blocks(messages[turn[0]]["content"])
    found = first[0].get("type") if first else "nothing"
    if found in ("thinking", "redacted_thinking"):
        return None
    return (f"messages.{turn[0]}.content.0.type: Expected `thinking` or `redacted_thinking`, "
            f"but found `{found}`. When `thinking` is enabled, a final `assistant` message "
            f"must start with a thinking block (preceeding the lastmost set of `tool_use` and "
            f"`tool_result` blocks). We recommend you include thinking blocks from previous "
            f"turns. To avoid this requirement, disable `thinking`. Please consult our "
            f"documentation at https://docs.claude.com/en/docs/build-with-claude/"
            f"extended-thinking")


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
