"""Validation of an OpenAI chat request: only what the gateway needs, the rest untouched.

Parameters the OpenAI format defines but the gateway does not interpret (``store``, ``audio``,
``prediction``, new ones) are forwarded to OpenAI-format upstreams (9.10); translation to
another format refuses or drops them by name (application/translate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.errors import DomainError
from domain.hold_sizing import LIMIT_FIELDS

MAX_MESSAGES = 2048
MAX_N = 8  # spec 1.8 (default): more choices per request is refused before any hold
MAX_TOOLS = 128
# Far above any model's output window; a larger number is a mistake or an attack on the hold.
MAX_OUTPUT_LIMIT = 1_000_000
# Top-level extension fields of the gateway (9.10): read here, never sent upstream.
EXTENSIONS = ("models", "provider", "cache", "session_id")


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]  # the client's JSON, forwarded with every field it sent
    model: str
    messages: list
    stream: bool
    include_usage: bool
    n: int = 1
    format: str = "openai"  # the client's wire format: "openai" (chat) or "anthropic"
    anthropic_version: str = ""  # the client's anthropic-version and anthropic-beta headers
    anthropic_beta: str = ""
    # Formats served through chat (legacy completions, Responses): the chat requests this
    # one is sent as, parsed once with it.
    inner: tuple[ChatRequest, ...] = ()


def _bad(message: str, param: str | None, code: str = "invalid_request") -> DomainError:
    return DomainError(code, message, param=param)


def _check_limit(body: dict, name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_OUTPUT_LIMIT:
        raise _bad(f"{name} must be an integer from 1 to {MAX_OUTPUT_LIMIT}", name)


def _bounded_array(body: dict, name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, list) or len(value) > MAX_TOOLS:
        raise _bad(f"{name} must be an array of at most {MAX_TOOLS} entries", name)
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise _bad(f"each entry of {name} must be an object", f"{name}[{index}]")


def parse_chat(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", None)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model is required and must be a string", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty array", "messages")
    if len(messages) > MAX_MESSAGES:
        raise _bad(f"at most {MAX_MESSAGES} messages are accepted", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _bad("each message must be an object with a role", f"messages[{index}]")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _bad("stream must be a boolean", "stream")
    n = body.get("n")
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N:
        raise _bad(f"n must be an integer from 1 to {MAX_N}", "n")
    for name in LIMIT_FIELDS:
        _check_limit(body, name)
    for name in ("tools", "functions"):
        _bounded_array(body, name)
    temperature = body.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or
                                    not isinstance(temperature, int | float) or
                                    not 0 <= temperature <= 2):
        raise _bad("temperature must be a number from 0 to 2", "temperature")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise _bad("stream_options must be an object", "stream_options")
        flag = options.get("include_usage")
        if flag is not None and not isinstance(flag, bool):
            raise _bad("stream_options.include_usage must be a boolean",
                       "stream_options.include_usage")
        include_usage = flag is True
    return ChatRequest(body=body, model=model.strip(), messages=messages, stream=stream,
                       include_usage=include_usage, n=n)


def upstream_chat_body(chat: ChatRequest, native_model_id: str, limit: int) -> dict[str, Any]:
    """The body sent to a provider: the client's JSON with the provider's model id and exactly
    one output-limit field set to ``limit`` (so the provider cannot out-spend the hold), and,
    for streams, usage always requested. ``chat.body`` is never modified."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError("limit must be a positive integer")
    source = chat.body
    body = without_extensions(source)
    body["model"] = native_model_id
    body.pop("max_output_tokens", None)  # a Responses API field, not a chat-completions one
    if source.get("max_tokens") is not None and source.get("max_completion_tokens") is None:
        body["max_tokens"] = limit
        body.pop("max_completion_tokens", None)
    else:
        body["max_completion_tokens"] = limit
        body.pop("max_tokens", None)
    if chat.stream:
        options = source.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                  "include_usage": True}
    return body


def without_extensions(body: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of the client's body without the gateway's own top-level fields."""
    return {k: v for k, v in body.items() if k not in EXTENSIONS}
