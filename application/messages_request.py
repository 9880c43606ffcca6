"""Validation of an Anthropic Messages request (9.6): what the gateway needs, the rest untouched.

The result is a ``ChatRequest`` of format "anthropic": the pipeline (hold sizing, dispatch,
settlement) is the same for both client formats; only the wire differs.
"""

from __future__ import annotations

from typing import Any

from application.chat_request import (
    MAX_MESSAGES,
    MAX_OUTPUT_LIMIT,
    MAX_TOOLS,
    ChatRequest,
    without_extensions,
)
from domain.errors import DomainError

ROLES = ("user", "assistant")
MIN_THINKING_BUDGET = 1024
DEFAULT_VERSION = "2023-06-01"  # 9.6: when the client sends no anthropic-version


def _bad(message: str, param: str | None) -> DomainError:
    return DomainError("invalid_request", message, param=param)


def _number(body: dict, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _bad(f"{name} must be a number from {low:g} to {high:g}", name)


def _messages(body: dict) -> list:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: a non-empty array is required", "messages")
    if len(messages) > MAX_MESSAGES:
        raise _bad(f"at most {MAX_MESSAGES} messages are accepted", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise _bad("each message must be an object whose role is user or assistant",
                       f"messages[{index}]")
        content = message.get("content")
        if not isinstance(content, str | list):
            raise _bad("content must be a string or an array of content blocks",
                       f"messages[{index}].content")
        if isinstance(content, list):
            for position, block in enumerate(content):
                if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                    raise _bad("each content block must be an object with a type",
                               f"messages[{index}].content[{position}]")
    return messages


def _thinking(body: dict, max_tokens: int) -> None:
    thinking = body.get("thinking")
    if thinking is None:
        return
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
        raise _bad("thinking must be an object whose type is enabled or disabled", "thinking")
    if thinking["type"] == "disabled":
        return
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
        raise _bad(f"thinking.budget_tokens must be an integer >= {MIN_THINKING_BUDGET}",
                   "thinking.budget_tokens")
    if budget >= max_tokens:
        raise _bad("thinking.budget_tokens must be less than max_tokens",
                   "thinking.budget_tokens")


def _system(body: dict) -> None:
    system = body.get("system")
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list) or not all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
            for b in system):
        raise _bad("system must be a string or an array of text blocks", "system")


def _array(body: dict, name: str, limit: int, kind: type) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, list) or len(value) > limit or \
            not all(isinstance(v, kind) for v in value):
        raise _bad(f"{name} must be an array of at most {limit} {kind.__name__} values"
                   .replace(" dict ", " object ").replace(" str ", " string "), name)


def parse_messages(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", None)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model: a string is required", "model")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _bad("max_tokens: Field required", "max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or \
            not 1 <= max_tokens <= MAX_OUTPUT_LIMIT:
        raise _bad(f"max_tokens must be an integer from 1 to {MAX_OUTPUT_LIMIT}", "max_tokens")
    messages = _messages(body)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _bad("stream must be a boolean", "stream")
    _thinking(body, max_tokens)
    _system(body)
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    _array(body, "tools", MAX_TOOLS, dict)
    _array(body, "stop_sequences", 64, str)
    for name in ("tool_choice", "metadata"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise _bad(f"{name} must be an object", name)
    # Anthropic streams always carry usage: the client gets it whether or not it asked.
    return ChatRequest(body=body, model=model.strip(), messages=messages, stream=stream,
                       include_usage=True, format="anthropic")


def upstream_messages_body(chat: ChatRequest, native_model_id: str, limit: int) -> dict:
    """The body for an Anthropic upstream: the client's own, with the provider's model id and
    ``max_tokens`` set to the held limit (so the provider cannot out-spend the hold)."""
    body = without_extensions(chat.body)
    body["model"] = native_model_id
    body["max_tokens"] = limit
    return body
