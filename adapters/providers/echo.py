"""The built-in ``gatewayz/echo`` model: answers with the last user message, free, offline."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import msgspec

from application.ports import ProviderTarget
from application.usage_meter import message_text
from domain.ids import new_id
from domain.pricing import estimate_text_tokens

_encode = msgspec.json.encode


def _last_user_text(messages: list) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text([message])
    return ""


class EchoUpstream:
    def __init__(self, body: dict) -> None:
        self.status = 200
        self.headers = {"content-type": "application/json"}
        messages = body.get("messages") or []
        self.text = _last_user_text(messages)
        self.model = "gatewayz/echo"
        self.id = "chatcmpl-" + new_id("x")[2:31]
        self.created = int(time.time())
        self.prompt_tokens = estimate_text_tokens(message_text(messages))
        self.completion_tokens = estimate_text_tokens(self.text)
        options = body.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

    def _usage(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0}}

    async def read(self) -> bytes:
        return _encode({
            "id": self.id, "object": "chat.completion", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text,
                                                 "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": self._usage()})

    def _chunk(self, delta: dict, finish: str | None, usage: dict | None = None,
               choices: bool = True) -> bytes:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                 "model": self.model,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None,
                              "finish_reason": finish}] if choices else []}
        if usage is not None:
            chunk["usage"] = usage
        return b"data: " + _encode(chunk) + b"\n\n"

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self._chunk({"role": "assistant", "content": ""}, None)
        if self.text:
            yield self._chunk({"content": self.text}, None)
        yield self._chunk({}, "stop")
        if self.include_usage:
            yield self._chunk({}, None, self._usage(), choices=False)
        yield b"data: [DONE]\n\n"

    def close(self) -> None:
        pass


class EchoClient:
    async def send(self, target: ProviderTarget, path: str, body: bytes,
                   headers: dict[str, str] | None = None) -> EchoUpstream:
        return EchoUpstream(msgspec.json.decode(body))
