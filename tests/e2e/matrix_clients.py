"""The two official SDKs as the compatibility matrix drives them (spec 9.1, 9.6, 9.7).

Each client asks one question, JSON or streamed, and hands back a ``Reply``: the answer in
the client's own terms (text, tool calls, reasoning, stop reason, usage) plus the assistant
message to send back on the next turn, built the way a real integration builds it. Streams
are read as an integration reads them (the OpenAI chunks merged by tool-call index, the
Anthropic SDK's own accumulator) and checked against the 9.7 stream contract on the way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from e2e.anthropic_support import anthropic_sdk
from e2e.support import sdk


@dataclass
class Reply:
    id: str  # the completion's or message's id
    text: str | None
    calls: list[tuple[str, str, dict]]  # (id, name, arguments) per tool call, in order
    reasoning: str | None
    details: list[dict]  # OpenAI reasoning_details, or Anthropic thinking blocks as dicts
    stop: str | None
    usage: dict  # the client format's usage fields
    model: str
    request_id: str
    headers: httpx.Headers
    echo: Any  # the assistant message, as the client sends it back
    chunks: list[dict] = field(default_factory=list)  # a stream's chunks or wire events


class OpenAIClient:
    """The OpenAI SDK against /v1/chat/completions."""

    name = "openai"
    STOP, TOOLS = "stop", "tool_calls"

    def __init__(self, served, key: str) -> None:
        self.sdk = sdk(served, key)

    @staticmethod
    def user(text: str, image: str | None = None) -> dict:
        if image is None:
            return {"role": "user", "content": text}
        url = f"data:image/png;base64,{image}"
        return {"role": "user", "content": [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]}

    @staticmethod
    def tools(specs: list[tuple[str, str, dict]]) -> dict:
        return {"tools": [{"type": "function", "function": {
            "name": name, "description": description,
            "parameters": {"type": "object", "properties": props, "required": list(props)}}}
            for name, description, props in specs]}

    @staticmethod
    def tool_results(results: list[tuple[str, str]]) -> list[dict]:
        return [{"role": "tool", "tool_call_id": call_id, "content": text}
                for call_id, text in results]

    @staticmethod
    def thinking() -> dict:
        # 4,096 leaves room below the limit for the "low" budget of 1,024 (9.11).
        return {"reasoning_effort": "low", "max_completion_tokens": 4096}

    @staticmethod
    def expected_usage(prompt: int, completion: int, cached: int, written: int,
                       reasoning: int) -> dict:
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion, "cached_tokens": cached,
                "reasoning_tokens": reasoning}

    def ask(self, model: str, messages: list, stream: bool, **kwargs: Any) -> Reply:
        if stream:
            chunks_stream = self.sdk.chat.completions.create(
                model=model, messages=messages, stream=True,
                stream_options={"include_usage": True}, **kwargs)
            headers = chunks_stream.response.headers
            chunks = [chunk.to_dict() for chunk in chunks_stream]
            message, finish, usage, head = merge_chunks(chunks)
        else:
            raw = self.sdk.chat.completions.with_raw_response.create(
                model=model, messages=messages, **kwargs)
            headers, completion = raw.headers, raw.parse().to_dict()
            chunks, choice = [], completion["choices"][0]
            message, finish, usage, head = (choice["message"], choice["finish_reason"],
                                            completion["usage"], completion)
        assert head["id"].startswith("chatcmpl-"), head["id"]
        calls = [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                 for c in message.get("tool_calls") or []]
        # The assistant turn as sent back: reasoning_details (and reasoning_content) ride
        # along as extra keys, which the SDK allows in message dicts.
        echo = {key: message[key] for key in ("role", "content", "tool_calls",
                                              "reasoning_content", "reasoning_details")
                if message.get(key) is not None}
        return Reply(head["id"], message.get("content"), calls, message.get("reasoning_content"),
                     message.get("reasoning_details") or [], finish, _openai_usage(usage),
                     head["model"], headers["x-request-id"], headers, echo, chunks)


def _openai_usage(usage: dict) -> dict:
    return {"prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"],
            "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
            "reasoning_tokens": (usage.get("completion_tokens_details") or {})
            .get("reasoning_tokens")}


def merge_chunks(chunks: list[dict]) -> tuple[dict, str | None, dict, dict]:
    """One message from chat chunks, merged as clients do (tool calls by ``index``), checking
    the 9.7 contract: the role first, one id/created/model, id and name on each call's first
    fragment, finish_reason on the last choice chunk, the usage chunk last."""
    assert chunks, "an empty stream"
    head = chunks[0]
    assert {(c["id"], c["created"], c["model"]) for c in chunks} == \
        {(head["id"], head["created"], head["model"])}
    *body, last = chunks
    assert last["choices"] == [] and last.get("usage"), last
    assert all(c["choices"] and not c.get("usage") for c in body), body
    assert body[0]["choices"][0]["delta"].get("role") == "assistant", body[0]
    finishes = [c["choices"][0].get("finish_reason") for c in body]
    assert finishes[-1] is not None and not any(finishes[:-1]), finishes
    message: dict[str, Any] = {"role": "assistant"}
    calls: dict[int, dict] = {}
    for chunk in body:
        delta = chunk["choices"][0]["delta"]
        for key in ("content", "reasoning_content"):
            if delta.get(key):
                message[key] = message.get(key, "") + delta[key]
        if delta.get("reasoning_details"):
            message.setdefault("reasoning_details", []).extend(delta["reasoning_details"])
        for fragment in delta.get("tool_calls") or []:
            index = fragment["index"]
            function = fragment.get("function") or {}
            if index not in calls:
                assert fragment.get("id") and function.get("name"), fragment
                calls[index] = {"id": fragment["id"], "type": "function",
                                "function": {"name": function["name"], "arguments": ""}}
            else:
                assert fragment.get("id") in (None, calls[index]["id"]), fragment
            calls[index]["function"]["arguments"] += function.get("arguments") or ""
    assert sorted(calls) == list(range(len(calls))), sorted(calls)
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    message.setdefault("content", None)
    return message, finishes[-1], last["usage"], head


class AnthropicClient:
    """The Anthropic SDK against /v1/messages."""

    name = "anthropic"
    STOP, TOOLS = "end_turn", "tool_use"

    def __init__(self, served, key: str) -> None:
        self.sdk = anthropic_sdk(served, key)

    @staticmethod
    def user(text: str, image: str | None = None) -> dict:
        if image is None:
            return {"role": "user", "content": text}
        return {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": image}},
            {"type": "text", "text": text}]}

    @staticmethod
    def tools(specs: list[tuple[str, str, dict]]) -> dict:
        return {"tools": [{"name": name, "description": description, "input_schema": {
            "type": "object", "properties": props, "required": list(props)}}
            for name, description, props in specs]}

    @staticmethod
    def tool_results(results: list[tuple[str, str]]) -> list[dict]:
        return [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call_id, "content": text}
            for call_id, text in results]}]

    @staticmethod
    def thinking() -> dict:
        return {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}

    @staticmethod
    def expected_usage(prompt: int, completion: int, cached: int, written: int,
                       reasoning: int) -> dict:
        return {"input_tokens": prompt - cached - written, "output_tokens": completion,
                "cache_read_input_tokens": cached, "cache_creation_input_tokens": written}

    def ask(self, model: str, messages: list, stream: bool, **kwargs: Any) -> Reply:
        kwargs.setdefault("max_tokens", 1024)
        if stream:
            with self.sdk.messages.stream(model=model, messages=messages, **kwargs) as events:
                # The wire events only, not the SDK's own text/input_json/thinking events.
                chunks = [e.to_dict() for e in events if e.type in WIRE_EVENTS]
                message = events.get_final_message()
                headers = events.response.headers
            kinds = [c["type"] for c in chunks]
            assert kinds[0] == "message_start", kinds
            assert kinds[-2:] == ["message_delta", "message_stop"], kinds
        else:
            raw = self.sdk.messages.with_raw_response.create(model=model, messages=messages,
                                                             **kwargs)
            headers, message, chunks = raw.headers, raw.parse(), []
        assert message.id.startswith("msg_") and message.type == "message", message
        assert message.role == "assistant"
        blocks = message.content
        texts = [b.text for b in blocks if b.type == "text"]
        thoughts = [b.thinking for b in blocks if b.type == "thinking"]
        u = message.usage
        usage = {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                 "cache_read_input_tokens": u.cache_read_input_tokens,
                 "cache_creation_input_tokens": u.cache_creation_input_tokens}
        return Reply(
            message.id, "".join(texts) if texts else None,
            [(b.id, b.name, b.input) for b in blocks if b.type == "tool_use"],
            "".join(thoughts) if thoughts else None,
            [b.to_dict() for b in blocks if b.type in ("thinking", "redacted_thinking")],
            message.stop_reason, usage, message.model, headers["x-request-id"], headers,
            # The documented tool loop: the assistant's content blocks go back as they came.
            {"role": "assistant", "content": blocks}, chunks)


WIRE_EVENTS = ("message_start", "content_block_start", "content_block_delta",
               "content_block_stop", "message_delta", "message_stop")


def block_order_problems(events: list[dict]) -> list[str]:
    """Where an Anthropic stream breaks 9.7's order: each block's start, its deltas, its
    stop, one block at a time."""
    problems, open_index = [], None
    for n, event in enumerate(events):
        kind, index = event["type"], event.get("index")
        if kind == "content_block_start" and open_index is not None:
            problems.append(f"event {n}: block {index} starts while {open_index} is open")
        elif kind in ("content_block_delta", "content_block_stop") and index != open_index:
            problems.append(f"event {n}: {kind} of block {index} while {open_index} is open")
        if kind == "content_block_start":
            open_index = index
        elif kind == "content_block_stop" and index == open_index:
            open_index = None
    return problems


CLIENTS = {"openai": OpenAIClient, "anthropic": AnthropicClient}
