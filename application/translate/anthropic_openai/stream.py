"""An OpenAI chat-completions stream as Anthropic Messages stream events (spec 9.7, 9.11).

Anthropic content blocks are strictly sequential (start, deltas, stop, then the next
block), while an OpenAI delta may carry reasoning, text and tool-call fragments at once;
each kind of output therefore closes the block before it and opens its own.
"""

from __future__ import annotations

from typing import Any

from application.translate.anthropic_openai.response import reasoning_text, stop_reason, usage

Event = tuple[str, dict]


def _event(name: str, **fields: Any) -> Event:
    return name, {"type": name, **fields}


class ChatToAnthropicStream:
    """Feed each parsed upstream chunk, call ``close()`` at ``[DONE]``; frame every returned
    pair with ``common.sse_event``."""

    def __init__(self, model: str, message_id: str) -> None:
        self._model = model
        self._message_id = message_id
        self._started = False
        self._closed = False
        self._blocks = 0  # blocks opened so far; the next block's index
        self._open: str | None = None  # kind of the open block
        self._signed = False  # the open thinking block has its signature, so it is complete
        self._tools: dict[Any, int] = {}  # upstream tool-call key -> block index
        # Calls whose id and name came but no argument yet: their block opens with the first
        # argument, so reasoning a host streams in between keeps its place before them.
        self._pending: dict[Any, tuple[str, str]] = {}
        self._last_tool: Any = None
        self._finish: Any = None
        self._usage: dict | None = None
        self._refused = False

    def feed(self, chunk: dict) -> list[Event]:
        if self._closed:
            return []
        events = self._start()
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            # n is 1 for Anthropic clients; anything beyond choice 0 is ignored.
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            events += self._reasoning(delta)
            if isinstance(delta.get("content"), str) and delta["content"]:
                events += self._text(delta["content"])
            if isinstance(delta.get("refusal"), str) and delta["refusal"]:
                self._refused = True
                events += self._text(delta["refusal"])
            for position, call in enumerate(delta.get("tool_calls") or []):
                if isinstance(call, dict):
                    events += self._tool_call(call, position)
            if choice.get("finish_reason"):
                # The usage chunk is still to come, so message_delta waits for close().
                self._finish = choice["finish_reason"]
        return events

    def close(self) -> list[Event]:
        if self._closed:
            return []
        self._closed = True
        events = self._start()
        for key in list(self._pending):  # calls that never got an argument: input {}
            events += self._open_tool(key) + self._close_block()
        events += self._close_block()
        reason = stop_reason(self._finish, bool(self._tools), self._refused)
        # Anthropic sends the input count in message_start; an OpenAI host sends it only in
        # the final usage chunk, so the real counts travel here, which the SDK applies.
        counts = usage(self._usage) if self._usage is not None else {"output_tokens": 0}
        events.append(_event("message_delta",
                             delta={"stop_reason": reason, "stop_sequence": None},
                             usage=counts))
        events.append(_event("message_stop"))
        return events

    def _start(self) -> list[Event]:
        if self._started:
            return []
        self._started = True
        return [_event("message_start", message={
            "id": self._message_id, "type": "message", "role": "assistant",
            "model": self._model, "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}})]

    def _reasoning(self, delta: dict) -> list[Event]:
        # OpenRouter repeats the reasoning text inside reasoning_details; the details are
        # read for their text only when no plain reasoning field carried it.
        text = reasoning_text(delta)
        events = self._thinking(text)
        for detail in delta.get("reasoning_details") or []:
            if not isinstance(detail, dict):
                continue
            kind = detail.get("type")
            if kind == "reasoning.text":
                if not text:
                    events += self._thinking(_str(detail.get("text")))
                if _str(detail.get("signature")):
                    events += self._signature(detail["signature"])
            elif kind == "reasoning.summary" and not text:
                events += self._thinking(_str(detail.get("summary")))
            elif kind == "reasoning.encrypted" and _str(detail.get("data")):
                events += self._close_block()
                block = {"type": "redacted_thinking", "data": detail["data"]}
                events += self._open_block("redacted_thinking", block) + self._close_block()
        return events

    def _thinking(self, text: str) -> list[Event]:
        if not text:
            return []
        events = []
        if self._open != "thinking" or self._signed:
            events = self._open_block("thinking", _THINKING)
        return events + [self._delta({"type": "thinking_delta", "thinking": text})]

    def _signature(self, signature: str) -> list[Event]:
        events = []
        if self._open != "thinking" or self._signed:
            events = self._open_block("thinking", _THINKING)
        self._signed = True  # a signature ends its block: more reasoning is a new block
        return events + [self._delta({"type": "signature_delta", "signature": signature})]

    def _text(self, text: str) -> list[Event]:
        events = [] if self._open == "text" else self._open_block("text", _TEXT)
        return events + [self._delta({"type": "text_delta", "text": text})]

    def _tool_call(self, call: dict, position: int) -> list[Event]:
        key = call.get("index")
        if not isinstance(key, int):
            # A host without tool-call indexes: a new id is a new call, a fragment without
            # one continues the latest call.
            key = call.get("id") or self._last_tool
            key = position if key is None else key
        function = call.get("function") or {}
        arguments = function.get("arguments")
        events: list[Event] = []
        if key not in self._tools:
            known_id, known_name = self._pending.get(key, ("", ""))
            self._pending[key] = (_str(call.get("id")) or known_id,
                                  _str(function.get("name")) or known_name)
            self._last_tool = key
            if not (isinstance(arguments, str) and arguments):
                return events
            events = self._open_tool(key)
        if isinstance(arguments, str) and arguments:
            # A fragment of an earlier call that arrives late still goes to that call's
            # block: the SDK accumulates by index, and the arguments must stay complete.
            events.append(_event("content_block_delta", index=self._tools[key],
                                 delta={"type": "input_json_delta",
                                        "partial_json": arguments}))
        return events

    def _open_tool(self, key: Any) -> list[Event]:
        call_id, name = self._pending.pop(key)
        events = self._open_block("tool_use", {"type": "tool_use", "id": call_id,
                                               "name": name, "input": {}})
        self._tools[key] = self._blocks - 1
        return events

    def _open_block(self, kind: str, block: dict) -> list[Event]:
        events = self._close_block()
        self._open = kind
        self._signed = False
        self._blocks += 1
        events.append(_event("content_block_start", index=self._blocks - 1,
                             content_block=dict(block)))
        return events

    def _close_block(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        return [_event("content_block_stop", index=self._blocks - 1)]

    def _delta(self, delta: dict) -> Event:
        return _event("content_block_delta", index=self._blocks - 1, delta=delta)


_THINKING = {"type": "thinking", "thinking": "", "signature": ""}
_TEXT = {"type": "text", "text": ""}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
