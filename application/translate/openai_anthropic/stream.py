"""Anthropic Messages stream events as OpenAI chat.completion.chunk objects (spec 9.7, 9.11).

Each event is translated as soon as it arrives, nothing held back; only what a chunk cannot
carry until its block ends (a thinking block's signature, the arguments of a tool called
without any) waits for that block's ``content_block_stop``.
"""

from __future__ import annotations

from typing import Any

from application.translate.openai_anthropic.response import (
    arguments_json,
    finish_reason,
    reasoning_detail,
    usage,
)

EVENTS = ("message_start", "content_block_start", "content_block_delta", "content_block_stop",
          "message_delta", "message_stop")


class AnthropicToChatStream:
    """Feed one parsed upstream event at a time; frame the returned chunks as ``data:``
    events. ``error`` events are the caller's, as are ``[DONE]`` and the error shape."""

    def __init__(self, model: str, response_id: str, created: int, include_usage: bool,
                 forced_tool: str | None = None) -> None:
        self._head = {"id": response_id, "object": "chat.completion.chunk", "created": created,
                      "model": model}
        self._include_usage = include_usage
        self._forced = forced_tool
        self._blocks: dict[Any, dict] = {}  # open content blocks by upstream index
        self._calls = 0  # tool calls handed out so far: the next call's OpenAI index
        self._details = 0  # reasoning_details entries handed out so far
        self._usage: dict = {}  # Anthropic usage, message_start's updated by message_delta's
        self._stop_reason: Any = None
        self._forced_used = False
        self._started = self._finished = self._usage_sent = False
        self.stopped = False  # message_stop seen: the upstream ended the message properly

    @property
    def usage(self) -> dict:
        """OpenAI usage so far, for metering whether or not the client asked for it."""
        return usage(self._usage)

    def feed(self, event: str, data: dict) -> list[dict]:
        kind = event or (data.get("type") if isinstance(data, dict) else None)
        if kind not in EVENTS or not isinstance(data, dict):
            return []  # ping, error (the caller's) and events newer than this code
        return getattr(self, "_" + kind)(data)

    def close(self) -> list[dict]:
        """What is still owed at the end: the finish chunk if message_delta never came, and
        the usage chunk. Nothing after message_stop, so calling it twice is harmless."""
        return self._finish() + self._usage_chunk()

    def _message_start(self, data: dict) -> list[dict]:
        message = data.get("message")
        self._merge(message.get("usage") if isinstance(message, dict) else None)
        return self._open()

    def _content_block_start(self, data: dict) -> list[dict]:
        block = data.get("content_block")
        if not isinstance(block, dict):
            return []
        kind = block.get("type")
        state: dict[str, Any] = {"type": kind, "args": False}
        self._blocks[data.get("index")] = state
        if kind == "text":
            return self._text("content", block.get("text"))
        if kind == "thinking":
            state.update(text=_str(block.get("thinking")), signature=_str(block.get("signature")),
                         index=self._next_detail())
            return self._text("reasoning_content", block.get("thinking"))
        if kind == "redacted_thinking":
            return self._emit({"reasoning_details": [reasoning_detail(block, self._next_detail())]})
        if kind != "tool_use":
            return []  # server tools and their results have no chat-completions form
        state["input"] = block.get("input")
        if self._forced is not None and block.get("name") == self._forced:
            state["forced"] = self._forced_used = True
            return []
        state["call"], self._calls = self._calls, self._calls + 1
        return self._emit({"tool_calls": [{
            "index": state["call"], "id": _str(block.get("id")), "type": "function",
            "function": {"name": _str(block.get("name")), "arguments": ""}}]})

    def _content_block_delta(self, data: dict) -> list[dict]:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return []
        state = self._blocks.get(data.get("index"), {})
        kind = delta.get("type")
        if kind == "text_delta":
            return self._text("content", delta.get("text"))
        if kind == "thinking_delta":
            if state.get("type") == "thinking":
                state["text"] += _str(delta.get("thinking"))
            return self._text("reasoning_content", delta.get("thinking"))
        if kind == "signature_delta" and state.get("type") == "thinking":
            state["signature"] += _str(delta.get("signature"))
        elif kind == "input_json_delta" and state.get("type") == "tool_use":
            return self._arguments(state, _str(delta.get("partial_json")))
        return []

    def _content_block_stop(self, data: dict) -> list[dict]:
        state = self._blocks.pop(data.get("index"), None) or {}
        if state.get("type") == "thinking":
            block = {"type": "thinking", "thinking": state["text"],
                     "signature": state["signature"]}
            return self._emit({"reasoning_details": [reasoning_detail(block, state["index"])]})
        if state.get("type") == "tool_use" and not state["args"]:
            # A tool called without arguments may stream none; clients still need an object.
            return self._arguments(state, arguments_json(state.get("input")))
        return []

    def _message_delta(self, data: dict) -> list[dict]:
        delta = data.get("delta")
        if isinstance(delta, dict) and delta.get("stop_reason") is not None:
            self._stop_reason = delta["stop_reason"]
        self._merge(data.get("usage"))
        return self._finish()

    def _message_stop(self, data: dict) -> list[dict]:
        self.stopped = True
        return self.close()

    def _arguments(self, state: dict, partial: str) -> list[dict]:
        if not partial:
            return []
        state["args"] = True
        if state.get("forced"):
            return self._emit({"content": partial})
        return self._emit({"tool_calls": [{"index": state["call"],
                                           "function": {"arguments": partial}}]})

    def _merge(self, upstream: Any) -> None:
        # message_delta counts are cumulative, and newer API versions repeat the input and
        # cache counts there too: the latest value of each wins.
        if isinstance(upstream, dict):
            self._usage.update({k: v for k, v in upstream.items() if v is not None})

    def _finish(self) -> list[dict]:
        if self._finished:
            return []
        self._finished = True
        reason = finish_reason(self._stop_reason, self._forced_used and not self._calls)
        return self._emit({}, reason)

    def _usage_chunk(self) -> list[dict]:
        if not self._include_usage or self._usage_sent:
            return []
        self._usage_sent = True
        return [{**self._head, "choices": [], "usage": self.usage}]

    def _next_detail(self) -> int:
        self._details += 1
        return self._details - 1

    def _text(self, key: str, text: Any) -> list[dict]:
        return self._emit({key: text}) if isinstance(text, str) and text else []

    def _open(self) -> list[dict]:
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _emit(self, delta: dict, finish: str | None = None) -> list[dict]:
        # The role chunk comes first even if an upstream skipped message_start.
        return self._open() + [self._chunk(delta, finish)]

    def _chunk(self, delta: dict, finish: str | None = None) -> dict:
        return {**self._head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                           "finish_reason": finish}]}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
