"""Chat-completion chunks -> Responses stream events (spec 9.4, 9.7).

Events come as ``(name, payload)`` pairs, framed by the caller with ``common.sse_event``:
``response.created``, ``response.in_progress``, then per output item ``output_item.added``,
its content events and ``output_item.done``, then ``response.completed`` (or
``response.incomplete``; ``response.failed`` and ``error`` when the upstream fails). Every
payload carries ``type`` (its name) and a ``sequence_number`` counting from 0.

Reasoning text (``reasoning_content``) is streamed as a reasoning item's summary, with
``response.reasoning_summary_part.*`` and ``response.reasoning_summary_text.*`` events.
A reasoning or message item closes as soon as another item starts; function calls stay open
until the end of the stream, so fragments of parallel calls may arrive in any order.
"""

from __future__ import annotations

from typing import Any

from application.translate.responses.response import (
    INCOMPLETE,
    envelope,
    function_call_item,
    item_id,
    reasoning_item,
    reasoning_text,
    usage_of,
)

Event = tuple[str, dict]
# ResponseError.code values the SDK knows; any other gateway code is reported as
# server_error in the Response and verbatim in the ``error`` event that follows.
_RESPONSE_ERROR_CODES = {"server_error", "rate_limit_exceeded", "invalid_prompt"}


class ChatToResponsesStream:
    """One Responses stream: ``feed`` each upstream chunk, then ``close`` at ``[DONE]`` or
    ``fail`` on an upstream error; after either, every call returns nothing."""

    def __init__(self, request: dict, response_id: str, created_at: int, model: str) -> None:
        self._request, self._id, self._created_at, self._model = (request, response_id,
                                                                   created_at, model)
        self._sequence = 0
        self._started = self._ended = False
        self._items: list[dict] = []  # per output index: the item's state
        self._current: dict | None = None  # the open reasoning or message item
        self._calls: dict[int, dict] = {}  # open function calls by chat tool-call index
        self._finish: str | None = None
        self._usage: Any = None

    def feed(self, chunk: dict) -> list[Event]:
        """Events for one chat-completion chunk (``data:`` JSON, parsed)."""
        if self._ended:
            return []
        events = self._start()
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:  # a Responses request never asks for n > 1
                continue
            delta = choice.get("delta") or {}
            details = delta.get("reasoning_details")
            text = reasoning_text(delta)
            if text or details:
                events += self._reasoning(text, details if isinstance(details, list) else [])
            if delta.get("content"):
                events += self._text("output_text", delta["content"])
            if delta.get("refusal"):
                events += self._text("refusal", delta["refusal"])
            for call in delta.get("tool_calls") or []:
                events += self._call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def close(self) -> list[Event]:
        """At the chat stream's ``[DONE]``: close every item, then the final Response."""
        if self._ended:
            return []
        events = self._start()
        if not self._calls and not any(s["kind"] == "message" for s in self._items):
            events += self._text("output_text", "")  # output_text is "" rather than absent
        status = "incomplete" if self._finish in INCOMPLETE else "completed"
        for state in self._items:
            if not state["done"]:
                events += self._close(state, status)
        self._ended = True
        response = envelope(self._request, self._id, self._created_at, self._model,
                            status=status, output=[s["final"] for s in self._items],
                            usage=usage_of(self._usage), finish=self._finish)
        events.append(self._event(f"response.{status}", response=response))
        return events

    def fail(self, message: str, code: str) -> list[Event]:
        """The upstream failed mid-stream: ``response.failed`` then ``error`` (9.7)."""
        if self._ended:
            return []
        events = self._start()
        self._ended = True
        output = [s["final"] if s["done"] else self._render(s, "incomplete")
                  for s in self._items]
        error = {"code": code if code in _RESPONSE_ERROR_CODES else "server_error",
                 "message": message}
        response = envelope(self._request, self._id, self._created_at, self._model,
                            status="failed", output=output, usage=usage_of(self._usage),
                            error=error)
        events.append(self._event("response.failed", response=response))
        events.append(self._event("error", code=code, message=message, param=None))
        return events

    def _event(self, name: str, **fields: Any) -> Event:
        payload = {"type": name, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return name, payload

    def _start(self) -> list[Event]:
        if self._started:
            return []
        self._started = True
        return [self._event(name, response=envelope(self._request, self._id, self._created_at,
                                                    self._model, status="in_progress",
                                                    output=[]))
                for name in ("response.created", "response.in_progress")]

    def _open(self, kind: str, prefix: str, **state: Any) -> tuple[dict, Event]:
        index = len(self._items)
        state = {"kind": kind, "index": index, "id": item_id(prefix, self._id, index),
                 "done": False, **state}
        self._items.append(state)
        added = self._event("response.output_item.added", output_index=index,
                            item=self._render(state, "in_progress"))
        return state, added

    def _sequential(self, kind: str) -> list[Event]:
        """Make the open reasoning or message item one of ``kind``."""
        if self._current is not None and self._current["kind"] == kind:
            return []
        events = self._close_current()
        if kind == "reasoning":
            self._current, added = self._open(kind, "rs", text="", details=[])
        else:
            self._current, added = self._open(kind, "msg", parts=[])
        return events + [added]

    def _close_current(self) -> list[Event]:
        state, self._current = self._current, None
        return self._close(state, "completed") if state else []

    def _reasoning(self, text: str, details: list) -> list[Event]:
        events = self._sequential("reasoning")
        state = self._current
        assert state is not None
        _merge_details(state["details"], details)
        if text:
            where = {"item_id": state["id"], "output_index": state["index"], "summary_index": 0}
            if not state["text"]:
                events.append(self._event("response.reasoning_summary_part.added", **where,
                                          part={"type": "summary_text", "text": ""}))
            state["text"] += text
            events.append(self._event("response.reasoning_summary_text.delta", **where,
                                      delta=text))
        return events

    def _text(self, kind: str, delta: str) -> list[Event]:
        """Text (``output_text``) or a refusal (``refusal``) into the open message item."""
        events = self._sequential("message")
        state = self._current
        assert state is not None
        parts = state["parts"]
        if not parts or parts[-1]["type"] != kind:
            events += self._close_part(state)
            parts.append({"type": "output_text", "annotations": [], "text": ""}
                         if kind == "output_text" else {"type": "refusal", "refusal": ""})
            events.append(self._event("response.content_part.added", **self._where(state),
                                      part=dict(parts[-1])))
        if delta:
            field = "text" if kind == "output_text" else "refusal"
            parts[-1][field] += delta
            if kind == "output_text":
                events.append(self._event("response.output_text.delta", **self._where(state),
                                          delta=delta, logprobs=[]))
            else:
                events.append(self._event("response.refusal.delta", **self._where(state),
                                          delta=delta))
        return events

    def _where(self, state: dict) -> dict:
        return {"item_id": state["id"], "output_index": state["index"],
                "content_index": len(state["parts"]) - 1}

    def _close_part(self, state: dict) -> list[Event]:
        if not state["parts"]:
            return []
        part = state["parts"][-1]
        if part["type"] == "output_text":
            done = self._event("response.output_text.done", **self._where(state),
                               text=part["text"], logprobs=[])
        else:
            done = self._event("response.refusal.done", **self._where(state),
                               refusal=part["refusal"])
        return [done, self._event("response.content_part.done", **self._where(state),
                                  part=dict(part))]

    def _call(self, call: dict) -> list[Event]:
        events: list[Event] = []
        function = call.get("function") or {}
        state = self._calls.get(call.get("index", 0))
        if state is None:
            events += self._close_current()
            # A first fragment without an id (a provider quirk) gets the item id: the call id
            # must not change between output_item.added and output_item.done.
            fallback = item_id("fc", self._id, len(self._items))
            state, added = self._open("function_call", "fc", call_id=call.get("id") or fallback,
                                      name=function.get("name") or "", arguments="")
            self._calls[call.get("index", 0)] = state
            events.append(added)
        elif function.get("name") and not state["name"]:
            state["name"] = function["name"]
        if function.get("arguments"):
            state["arguments"] += function["arguments"]
            events.append(self._event("response.function_call_arguments.delta",
                                      item_id=state["id"], output_index=state["index"],
                                      delta=function["arguments"]))
        return events

    def _close(self, state: dict, status: str) -> list[Event]:
        events: list[Event] = []
        where = {"item_id": state["id"], "output_index": state["index"]}
        if state["kind"] == "reasoning" and state["text"]:
            events.append(self._event("response.reasoning_summary_text.done", **where,
                                      summary_index=0, text=state["text"]))
            events.append(self._event("response.reasoning_summary_part.done", **where,
                                      summary_index=0,
                                      part={"type": "summary_text", "text": state["text"]}))
        elif state["kind"] == "message":
            events += self._close_part(state)
        elif state["kind"] == "function_call":
            events.append(self._event("response.function_call_arguments.done", **where,
                                      arguments=state["arguments"]))
        state["done"], state["final"] = True, self._render(state, status)
        events.append(self._event("response.output_item.done", output_index=state["index"],
                                  item=state["final"]))
        return events

    def _render(self, state: dict, status: str) -> dict:
        """The item as the client sees it now (a fresh dict: payloads are never mutated)."""
        if state["kind"] == "reasoning":
            return reasoning_item(state["id"], state["text"], state["details"])
        if state["kind"] == "message":
            return {"id": state["id"], "type": "message", "status": status,
                    "content": [dict(p) for p in state["parts"]], "role": "assistant"}
        return function_call_item(state["id"], state["call_id"], state["name"],
                                  state["arguments"], status)


def _merge_details(details: list, fragments: list) -> None:
    """Add streamed ``reasoning_details``. Entries sharing an ``index`` and ``type`` are
    fragments of one (OpenRouter streams the text, then the signature): they are joined, so
    the signature stays with its whole text."""
    for fragment in fragments:
        if not isinstance(fragment, dict):
            continue
        same = [d for d in details if "index" in fragment and d.get("index") ==
                fragment["index"] and d.get("type") == fragment.get("type")]
        if not same:
            details.append(dict(fragment))
            continue
        for key, value in fragment.items():
            if key in ("text", "summary", "data") and isinstance(value, str):
                same[0][key] = (same[0].get(key) or "") + value
            elif value not in (None, ""):
                same[0][key] = value
