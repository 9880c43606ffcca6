"""Validation of an OpenAI chat request: only what the gateway needs, the rest untouched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.errors import DomainError

MAX_MESSAGES = 2048
MAX_N = 8
UNSUPPORTED = ("store", "audio", "prediction")


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]  # the client's JSON, forwarded with every field it sent
    model: str
    messages: list
    stream: bool
    include_usage: bool


def _bad(message: str, param: str | None, code: str = "invalid_request") -> DomainError:
    return DomainError(code, message, param=param)


def _positive_int(body: dict, name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad(f"{name} must be a positive integer", name)


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
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N):
        raise _bad(f"n must be an integer from 1 to {MAX_N}", "n")
    for name in ("max_tokens", "max_completion_tokens"):
        _positive_int(body, name)
    temperature = body.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or
                                    not isinstance(temperature, int | float) or
                                    not 0 <= temperature <= 2):
        raise _bad("temperature must be a number from 0 to 2", "temperature")
    for name in UNSUPPORTED:
        value = body.get(name)
        if value not in (None, False):
            raise _bad(f"{name} is not supported by this gateway", name, "unsupported_parameter")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise _bad("stream_options must be an object", "stream_options")
        include_usage = bool(options.get("include_usage", False))
    return ChatRequest(body=body, model=model.strip(), messages=messages, stream=stream,
                       include_usage=include_usage)
