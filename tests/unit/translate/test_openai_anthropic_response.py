"""Anthropic Message -> OpenAI chat.completion (9.1, 9.11), parsed by the official SDKs on
both sides; with hypothesis, the round trip back through the request translation keeps
thinking signatures, tool ids and block order, and the usage arithmetic holds."""

from __future__ import annotations

import json

import pytest
from anthropic.types import Message
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion

from application.translate.openai_anthropic.request import request
from application.translate.openai_anthropic.response import response, usage

FORMAT = "anthropic-claude-v1"


def message(content: list, stop_reason: str | None = "end_turn", **usage_fields) -> dict:
    body = {"id": "msg_01X", "type": "message", "role": "assistant", "model": "claude-x",
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5, **usage_fields}}
    Message.model_validate(body)  # the fixture itself is a real Anthropic message
    return body


def translate(body: dict, forced: str | None = None) -> dict:
    out = response(body, "anthropic/claude-x", "chatcmpl-" + "a" * 29, 1700000000, forced)
    ChatCompletion.model_validate(out)
    return out


def test_text_message() -> None:
    out = translate(message([{"type": "text", "text": "Hello"}, {"type": "text", "text": "!"}]))
    assert out == {
        "id": "chatcmpl-" + "a" * 29, "object": "chat.completion", "created": 1700000000,
        "model": "anthropic/claude-x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!",
                                             "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                  "prompt_tokens_details": {"cached_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}}}


def test_thinking_and_tool_use() -> None:
    content = [{"type": "thinking", "thinking": "hmm", "signature": "sig"},
               {"type": "redacted_thinking", "data": "opaque"},
               {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Paris"}},
               {"type": "tool_use", "id": "toolu_2", "name": "t", "input": {}}]
    reply = translate(message(content, "tool_use"))["choices"][0]
    assert reply["finish_reason"] == "tool_calls"
    assert reply["message"]["content"] is None
    assert reply["message"]["tool_calls"] == [
        {"id": "toolu_1", "type": "function",
         "function": {"name": "w", "arguments": "{\"city\":\"Paris\"}"}},
        {"id": "toolu_2", "type": "function", "function": {"name": "t", "arguments": "{}"}}]
    assert reply["message"]["reasoning_content"] == "hmm"
    assert reply["message"]["reasoning_details"] == [
        {"type": "reasoning.text", "text": "hmm", "signature": "sig", "format": FORMAT,
         "index": 0},
        {"type": "reasoning.encrypted", "data": "opaque", "format": FORMAT, "index": 1}]


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("pause_turn", "stop"),
    (None, "stop"), ("brand_new_reason", "stop")])
def test_stop_reasons(stop: str | None, finish: str) -> None:
    body = message([{"type": "text", "text": "x"}])
    body["stop_reason"] = stop
    assert response(body, "m", "id", 1)["choices"][0]["finish_reason"] == finish


def test_forced_tool_is_content_not_a_call() -> None:
    content = [{"type": "tool_use", "id": "toolu_9", "name": "person",
                "input": {"name": "Ada", "born": 1815}}]
    reply = translate(message(content, "tool_use"), forced="person")["choices"][0]
    assert reply["finish_reason"] == "stop" and "tool_calls" not in reply["message"]
    assert json.loads(reply["message"]["content"]) == {"name": "Ada", "born": 1815}
    truncated = translate(message(content, "max_tokens"), forced="person")["choices"][0]
    assert truncated["finish_reason"] == "length"


def test_cache_usage() -> None:
    out = translate(message([], cache_read_input_tokens=100, cache_creation_input_tokens=50,
                            output_tokens_details={"thinking_tokens": 3}))
    assert out["usage"] == {"prompt_tokens": 160, "completion_tokens": 5, "total_tokens": 165,
                            "prompt_tokens_details": {"cached_tokens": 100},
                            "completion_tokens_details": {"reasoning_tokens": 3}}


@pytest.mark.parametrize("odd", [{}, None, [], {"content": "text?", "usage": "x"},
                                 {"content": [None, 3, {"type": "image"}, {"type": "text"}],
                                  "usage": {"input_tokens": -4, "output_tokens": True}}])
def test_odd_upstream_bodies_never_raise(odd) -> None:
    out = translate(odd)
    assert out["usage"]["total_tokens"] == 0
    assert out["choices"][0]["finish_reason"] == "stop"


counts = st.integers(min_value=0, max_value=10**9)


@given(counts, counts, counts, counts)
def test_usage_arithmetic_and_round_trip(fresh: int, read: int, written: int, out: int) -> None:
    openai = usage({"input_tokens": fresh, "cache_read_input_tokens": read,
                    "cache_creation_input_tokens": written, "output_tokens": out})
    assert openai["prompt_tokens"] == fresh + read + written
    assert openai["prompt_tokens_details"]["cached_tokens"] == read
    assert openai["completion_tokens"] == out
    assert openai["total_tokens"] == fresh + read + written + out
    # The reverse of 9.11 (OpenAI has no cache-creation count, so it folds into input).
    back = {"input_tokens": openai["prompt_tokens"] - openai["prompt_tokens_details"][
        "cached_tokens"], "cache_read_input_tokens": read, "output_tokens": out}
    assert usage(back) == openai


ids = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1,
              max_size=24).map("toolu_".__add__)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=8)
thinking = st.builds(lambda text, sig: {"type": "thinking", "thinking": text, "signature": sig},
                     st.text(), st.text(min_size=1))
redacted = st.builds(lambda data: {"type": "redacted_thinking", "data": data},
                     st.text(min_size=1))
tool_use = st.builds(lambda i, name, value: {"type": "tool_use", "id": i, "name": name,
                                             "input": value},
                     ids, st.sampled_from(["a", "b_c", "get-weather"]),
                     st.dictionaries(st.text(max_size=8), json_values, max_size=4))


@given(st.lists(thinking | redacted, max_size=3),
       st.text().filter(str.strip) | st.none(),
       st.lists(tool_use, max_size=4, unique_by=lambda block: block["id"]))
def test_assistant_turn_round_trips_through_the_client(reasoning, text, calls) -> None:
    """Anthropic's blocks -> the client's message -> the next request's assistant turn: the
    same blocks, signatures, tool ids and order (9.11 Must not)."""
    content = reasoning + ([{"type": "text", "text": text}] if text else []) + calls
    reply = translate(message(content, "tool_use" if calls else "end_turn"))
    assistant = reply["choices"][0]["message"]
    sent = request({"model": "m", "messages": [{"role": "user", "content": "q"}, assistant]},
                   "claude", 100)
    turns = sent.body["messages"]
    assert turns[1:] == ([{"role": "assistant", "content": content}] if content else [])
    assert [c["id"] for c in assistant.get("tool_calls", [])] == [c["id"] for c in calls]
