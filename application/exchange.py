"""Exchanges: how one request travels between the client's wire format and a provider's.

One exchange per (client format, upstream protocol): it prepares the upstream request,
turns a JSON answer into the client's format, and gives the stream meter. Same-format pairs
pass the client's JSON through; the others use the pure translators of
``application.translate`` (9.11). Which pair applies is decided per offer, so a request can
fail over from an Anthropic upstream to an OpenAI-compatible one and back.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import msgspec
from ulid import ULID

from application.chat_request import ChatRequest, upstream_chat_body, without_extensions
from application.messages_request import DEFAULT_VERSION, upstream_messages_body
from application.sse_relay import SseRelay, stream_error_event
from application.stream_meters import (
    AnthropicPassMeter,
    AnthropicToOpenAIMeter,
    OpenAIToAnthropicMeter,
    anthropic_error_event,
)
from application.translate.anthropic_openai import request as ao_request
from application.translate.anthropic_openai import response as ao_response
from application.translate.anthropic_openai import stream as ao_stream
from application.translate.openai_anthropic import request as oa_request
from application.translate.openai_anthropic import response as oa_response
from application.translate.openai_anthropic import stream as oa_stream
from application.usage_meter import anthropic_usage, usage_from
from domain.errors import DomainError
from domain.pricing import TokenUsage

_encode = msgspec.json.encode
ANTHROPIC = "anthropic"


def chat_completion_id() -> str:
    """``chatcmpl-`` and 29 characters, as OpenAI's ids (9.1)."""
    return "chatcmpl-" + str(ULID()) + secrets.token_hex(2)[:3]


def message_id() -> str:
    return "msg_" + str(ULID())


@dataclass
class Prepared:
    """One offer's upstream request, ready to send."""

    exchange: Exchange
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    adjusted: list[str] = field(default_factory=list)
    # Several upstream calls make one attempt (legacy completions with several prompts).
    parts: list[Prepared] = field(default_factory=list)


@dataclass
class Completed:
    """A JSON answer in the client's format, with what billing needs from it."""

    payload: Any
    usage: TokenUsage | None
    finish: str | None
    text: str


class Exchange:
    client = "openai"
    upstream = "openai"

    def prepare(self, chat: ChatRequest, native: str, limit: int) -> Prepared:
        raise NotImplementedError

    def complete(self, chat: ChatRequest, payload: Any) -> Completed:
        raise NotImplementedError

    def meter(self, chat: ChatRequest, request_id: str) -> Any:
        raise NotImplementedError

    def keep_alive(self) -> bytes:
        """What an idle stream sends every 15 s (9.7): a comment, or Anthropic's ping."""
        if self.client == ANTHROPIC:
            return b'event: ping\ndata: {"type": "ping"}\n\n'
        return b": keep-alive\n\n"

    def error_event(self, request_id: str) -> bytes:
        if self.client == ANTHROPIC:
            return anthropic_error_event(request_id)
        return stream_error_event(request_id)


def _anthropic_headers(chat: ChatRequest, beta: bool) -> dict[str, str]:
    headers = {"anthropic-version": chat.anthropic_version or DEFAULT_VERSION}
    if beta and chat.anthropic_beta:
        headers["anthropic-beta"] = chat.anthropic_beta
    return headers


class OpenAIPassThrough(Exchange):
    def prepare(self, chat: ChatRequest, native: str, limit: int) -> Prepared:
        return Prepared(self, "/chat/completions", _encode(upstream_chat_body(chat, native,
                                                                              limit)))

    def complete(self, chat: ChatRequest, payload: Any) -> Completed:
        finish = None
        if isinstance(payload, dict):
            payload["model"] = chat.model
            choices = payload.get("choices") or [{}]
            finish = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
        return Completed(payload, usage_from(payload), finish, _choice_text(payload))

    def meter(self, chat: ChatRequest, request_id: str) -> Any:
        return SseRelay(chat.model, strip_usage=chat.stream and not chat.include_usage)


class AnthropicPassThrough(Exchange):
    client = upstream = ANTHROPIC

    def prepare(self, chat: ChatRequest, native: str, limit: int) -> Prepared:
        return Prepared(self, "/messages", _encode(upstream_messages_body(chat, native, limit)),
                        _anthropic_headers(chat, beta=True))

    def complete(self, chat: ChatRequest, payload: Any) -> Completed:
        usage = finish = None
        if isinstance(payload, dict):
            payload["model"] = chat.model
            usage = anthropic_usage(payload.get("usage"))
            finish = payload.get("stop_reason")
        return Completed(payload, usage, finish if isinstance(finish, str) else None,
                         _block_text(payload))

    def meter(self, chat: ChatRequest, request_id: str) -> Any:
        return AnthropicPassMeter(chat.model)


class OpenAIClientAnthropicUpstream(Exchange):
    upstream = ANTHROPIC

    def prepare(self, chat: ChatRequest, native: str, limit: int) -> Prepared:
        translated = oa_request.request(without_extensions(chat.body), native, limit)
        return Prepared(self, "/messages", _encode(translated.body),
                        _anthropic_headers(chat, beta=False), translated.dropped,
                        translated.adjusted)

    def complete(self, chat: ChatRequest, payload: Any) -> Completed:
        if not isinstance(payload, dict):
            return Completed(payload, None, None, "")
        answer = oa_response.response(payload, chat.model, chat_completion_id(),
                                      int(time.time()), oa_request.forced_tool_name(chat.body))
        choice = (answer.get("choices") or [{}])[0]
        return Completed(answer, anthropic_usage(payload.get("usage")),
                         choice.get("finish_reason"), _block_text(payload))

    def meter(self, chat: ChatRequest, request_id: str) -> Any:
        translator = oa_stream.AnthropicToChatStream(
            chat.model, chat_completion_id(), int(time.time()), chat.include_usage,
            oa_request.forced_tool_name(chat.body))
        return AnthropicToOpenAIMeter(translator, request_id)


class AnthropicClientOpenAIUpstream(Exchange):
    client = ANTHROPIC

    def prepare(self, chat: ChatRequest, native: str, limit: int) -> Prepared:
        if chat.anthropic_beta:
            raise DomainError("unsupported_parameter",
                              f"the beta feature {chat.anthropic_beta[:100]!r} cannot be "
                              "served by an OpenAI-format provider", param="anthropic-beta")
        translated = ao_request.request(without_extensions(chat.body), native, limit)
        return Prepared(self, "/chat/completions", _encode(translated.body), {},
                        translated.dropped, translated.adjusted)

    def complete(self, chat: ChatRequest, payload: Any) -> Completed:
        if not isinstance(payload, dict):
            return Completed(payload, None, None, "")
        answer = ao_response.response(payload, chat.model, message_id())
        return Completed(answer, usage_from(payload), answer.get("stop_reason"),
                         _choice_text(payload))

    def meter(self, chat: ChatRequest, request_id: str) -> Any:
        return OpenAIToAnthropicMeter(ao_stream.ChatToAnthropicStream(chat.model, message_id()),
                                      request_id)


class EmbeddingsPassThrough(Exchange):
    """Embeddings to an OpenAI-format provider, as the client sent them (9.3)."""

    def prepare(self, chat: ChatRequest, native: str, limit: int) -> Prepared:
        return Prepared(self, "/embeddings",
                        _encode({**without_extensions(chat.body), "model": native}))

    def complete(self, chat: ChatRequest, payload: Any) -> Completed:
        if isinstance(payload, dict):
            payload["model"] = chat.model
        return Completed(payload, usage_from(payload), None, "")


class Unserved(Exchange):
    """A client format this provider protocol cannot serve: the offer is skipped."""

    def __init__(self, what: str) -> None:
        self.what = what

    def prepare(self, chat: ChatRequest, native: str, limit: int) -> Prepared:
        raise DomainError("unsupported_parameter",
                          f"{chat.model} has no provider that serves {self.what}",
                          param="model")


_EXCHANGES = {
    ("embeddings", "openai"): EmbeddingsPassThrough(),
    ("embeddings", ANTHROPIC): Unserved("embeddings"),
    ("openai", "openai"): OpenAIPassThrough(),
    (ANTHROPIC, ANTHROPIC): AnthropicPassThrough(),
    ("openai", ANTHROPIC): OpenAIClientAnthropicUpstream(),
    (ANTHROPIC, "openai"): AnthropicClientOpenAIUpstream(),
}


def exchange_for(client_format: str, protocol: str) -> Exchange:
    """The exchange for a client format and a provider protocol; every protocol but
    Anthropic's speaks OpenAI chat completions (the built-in echo model too)."""
    upstream = ANTHROPIC if protocol == ANTHROPIC else "openai"
    if client_format == "completions":  # served through chat (9.2); imported here, as it
        # builds on this module
        from application.completions_exchange import CompletionsExchange

        return CompletionsExchange(_EXCHANGES[("openai", upstream)])
    if client_format == "responses":  # served through chat (9.4)
        from application.responses_exchange import ResponsesExchange

        return ResponsesExchange(_EXCHANGES[("openai", upstream)])
    return _EXCHANGES[(client_format, upstream)]


def _choice_text(payload: Any) -> str:
    try:
        return payload["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return ""


def _block_text(payload: Any) -> str:
    blocks = payload.get("content") if isinstance(payload, dict) else None
    if not isinstance(blocks, list):
        return ""
    return "".join(b.get("text") or "" for b in blocks
                   if isinstance(b, dict) and isinstance(b.get("text"), str))
