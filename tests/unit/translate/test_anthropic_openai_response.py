"""OpenAI chat completion -> Anthropic Message (9.6, 9.11); every result must satisfy the
official SDK's Message model."""

from __future__ import annotations

import json

import pytest
from anthropic.types import Message
from hypothesis import given
from hypothesis import strategies as st

from application.translate.anthropic_openai.response import response, usage


def completion(message: dict, finish: str | None = "stop", **extra) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", **message},
                         "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}, **extra}


def translate(body: dict) -> dict:
    out = response(body, "openai/gpt-4o", "msg_01abc")
    Message.model_validate(out)  # the SDK parses it
    return out


def call(call_id: str, name: str, arguments: str) -> dict:
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


def test_text_message() -> None:
    out = translate(completion({"content": "Hi there", "refusal": None}))
    assert out == {"id": "msg_01abc", "type": "message", "role": "assistant",
                   "model": "openai/gpt-4o", "content": [{"type": "text", "text": "Hi there"}],
                   "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0, "output_tokens": 4}}


def test_block_order_thinking_text_tools() -> None:
    out = translate(completion({
        "content": "Let me look.", "reasoning_content": "Need weather.",
        "tool_calls": [call("call_1", "weather", '{"city":"Paris"}'),
                       call("call_2", "time", '{"tz":"CET"}')]}, "tool_calls"))
    assert out["content"] == [
        {"type": "thinking", "thinking": "Need weather.", "signature": ""},
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "time", "input": {"tz": "CET"}}]
    assert out["stop_reason"] == "tool_use"


def test_reasoning_details_keep_signatures_and_redacted_blocks() -> None:
    out = translate(completion({"content": "ok", "reasoning": "a b", "reasoning_details": [
        {"type": "reasoning.text", "text": "a", "signature": "sig1",
         "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic-claude-v1",
         "index": 1},
        {"type": "reasoning.text", "text": " b", "signature": "sig2", "index": 2}]}))
    assert out["content"][:3] == [
        {"type": "thinking", "thinking": "a", "signature": "sig1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "thinking", "thinking": " b", "signature": "sig2"}]


def test_signature_only_details_take_text_from_reasoning_content() -> None:
    out = translate(completion({"content": "ok", "reasoning_content": "why",
                                "reasoning_details": [{"type": "reasoning.text",
                                                       "signature": "s"}]}))
    assert out["content"][0] == {"type": "thinking", "thinking": "why", "signature": "s"}


def test_refusal_becomes_text_with_refusal_stop() -> None:
    out = translate(completion({"content": None, "refusal": "I can't help with that."}))
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", "", None, "null"])
def test_unusable_arguments_become_empty_input(arguments) -> None:
    out = translate(completion({"content": None, "tool_calls": [
        call("call_bad", "f", arguments), call("call_ok", "g", '{"x": 1}')]}, "tool_calls"))
    assert [(b["id"], b["input"]) for b in out["content"]] == [("call_bad", {}),
                                                               ("call_ok", {"x": 1})]


@pytest.mark.parametrize(("finish", "reason"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"),
    ("content_filter", "refusal"), (None, "end_turn"), ("weird", "end_turn")])
def test_stop_reasons(finish, reason) -> None:
    assert translate(completion({"content": "x"}, finish))["stop_reason"] == reason


def test_stop_with_tool_calls_is_tool_use() -> None:
    out = translate(completion({"content": None, "tool_calls": [call("c", "f", "{}")]}, "stop"))
    assert out["stop_reason"] == "tool_use"


def test_cached_usage_and_missing_usage() -> None:
    body = completion({"content": "x"})
    body["usage"] = {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                     "prompt_tokens_details": {"cached_tokens": 1920},
                     "completion_tokens_details": {"reasoning_tokens": 256}}
    assert translate(body)["usage"] == {"input_tokens": 86, "cache_creation_input_tokens": 0,
                                        "cache_read_input_tokens": 1920, "output_tokens": 300}
    del body["usage"]
    assert translate(body)["usage"]["input_tokens"] == 0


def test_only_first_choice_and_empty_choices() -> None:
    body = completion({"content": "first"})
    body["choices"].append({"index": 1, "message": {"role": "assistant", "content": "second"},
                            "finish_reason": "length"})
    out = translate(body)
    assert out["content"] == [{"type": "text", "text": "first"}]
    assert out["stop_reason"] == "end_turn"
    assert translate({"choices": []})["content"] == []


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**9))
def test_usage_conversion_keeps_totals(prompt: int, cached: int, completion_tokens: int) -> None:
    cached = min(cached, prompt)
    out = usage({"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                 "prompt_tokens_details": {"cached_tokens": cached}})
    assert out["input_tokens"] + out["cache_read_input_tokens"] + \
        out["cache_creation_input_tokens"] == prompt
    assert (out["cache_read_input_tokens"], out["output_tokens"]) == (cached, completion_tokens)


_args = st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8)),
                        max_size=4)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), _args), max_size=5, unique_by=lambda
                c: c[0]))
def test_tool_ids_order_and_inputs_preserved(calls: list) -> None:
    body = completion({"content": None, "tool_calls": [
        call(call_id, "f", json.dumps(args)) for call_id, args in calls]}, "tool_calls")
    out = translate(body)
    assert [(b["id"], b["input"]) for b in out["content"]] == calls
