"""Validation of an OpenAI embeddings request (9.3): the gateway reads only what it needs."""

from __future__ import annotations

from typing import Any

from application.chat_request import ChatRequest
from domain.errors import DomainError

MAX_INPUTS = 2048  # as the OpenAI API allows
MAX_TOKEN_ID = 10_000_000


def _bad(message: str, param: str | None) -> DomainError:
    return DomainError("invalid_request", message, param=param)


def _tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= MAX_TOKEN_ID for t in value)


def _check_input(value: Any) -> None:
    if isinstance(value, str):
        if not value:
            raise _bad("input must not be empty", "input")
        return
    if _tokens(value):
        return
    if not isinstance(value, list) or not value:
        raise _bad("input must be a string, an array of strings or an array of token arrays",
                   "input")
    if len(value) > MAX_INPUTS:
        raise _bad(f"input may hold at most {MAX_INPUTS} entries", "input")
    for index, item in enumerate(value):
        if not (isinstance(item, str) and item) and not _tokens(item):
            raise _bad("each input must be a non-empty string or token array",
                       f"input[{index}]")


def parse_embeddings(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object", None)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model is required and must be a string", "model")
    _check_input(body.get("input"))
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ("float", "base64"):
        raise _bad("encoding_format must be float or base64", "encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or
                                   not isinstance(dimensions, int) or
                                   not 1 <= dimensions <= 65_536):
        raise _bad("dimensions must be an integer from 1 to 65536", "dimensions")
    if body.get("stream") not in (None, False):
        raise DomainError("unsupported_parameter", "embeddings are never streamed",
                          param="stream")
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    # The texts as messages: what the usage estimate reads if the provider reports none.
    messages = [{"role": "user", "content": t} for t in texts if isinstance(t, str)]
    return ChatRequest(body=body, model=model.strip(), messages=messages, stream=False,
                       include_usage=False, format="embeddings")
