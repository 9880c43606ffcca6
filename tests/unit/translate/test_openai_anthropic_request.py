"""OpenAI chat body -> Anthropic Messages body (9.1, 9.10, 9.11); every produced body is
checked against the official Anthropic SDK's request types."""

from __future__ import annotations

import json

import pytest
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from application.translate.openai_anthropic.request import forced_tool_name, request
from domain.errors import DomainError

PARAMS = TypeAdapter(MessageCreateParamsNonStreaming)
STREAM_PARAMS = TypeAdapter(MessageCreateParamsStreaming)
PNG = "data:image/png;base64,iVBORw0KGgo="


def translate(limit: int = 4096, **fields):
    body = {"model": "claude", "messages": [{"role": "user", "content": "hi"}], **fields}
    out = request(body, "claude-sonnet-4-5", limit)
    checked = (STREAM_PARAMS if out.body.get("stream") else PARAMS).validate_python(out.body)
    # The SDK's types ignore unknown keys and check lists lazily: walking the result and
    # finding the body unchanged proves every key and block is one the SDK knows. Sampling
    # keys are the exception: this SDK release no longer types them, spec 9.6 still has them.
    sampling = {"temperature", "top_p", "top_k"}
    assert drain(checked) == {k: v for k, v in out.body.items() if k not in sampling}
    return out


def drain(value):
    if isinstance(value, dict):
        return {key: drain(item) for key, item in value.items()}
    if isinstance(value, str | int | float | None):
        return value
    return [drain(item) for item in value]  # lists and pydantic's lazy ValidatorIterator


def refused(**fields) -> DomainError:
    with pytest.raises(DomainError) as caught:
        translate(**fields)
    return caught.value


def test_minimal_body_always_gets_model_and_max_tokens() -> None:
    out = translate(limit=333)
    assert out.body == {"model": "claude-sonnet-4-5", "max_tokens": 333,
                        "messages": [{"role": "user",
                                      "content": [{"type": "text", "text": "hi"}]}]}
    assert out.dropped == [] and out.adjusted == []


def test_system_and_developer_join_in_order_with_a_blank_line() -> None:
    messages = [{"role": "system", "content": "A"}, {"role": "user", "content": "hi"},
                {"role": "developer", "content": [{"type": "text", "text": "B"},
                                                  {"type": "text", "text": "C"}]}]
    assert translate(messages=messages).body["system"] == "A\n\nB\n\nC"


def test_images_data_uri_and_url_become_sources() -> None:
    parts = [{"type": "text", "text": "what?"},
             {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}},
             {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}}]
    body = translate(messages=[{"role": "user", "content": parts}]).body
    content = body["messages"][0]["content"]
    assert content[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                      "data": "iVBORw0KGgo="}}
    assert content[2] == {"type": "image", "source": {"type": "url",
                                                      "url": "https://x.test/cat.jpg"}}


@pytest.mark.parametrize("url", ["data:image/bmp;base64,AAAA", "data:image/png,raw",
                                 "ftp://x.test/a.png", "file:///etc/passwd"])
def test_other_images_are_refused_with_the_part_path(url: str) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}
    messages = [{"role": "system", "content": "s"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, part]}]
    error = refused(messages=messages)
    assert (error.code, error.param) == ("invalid_request", "messages[1].content[1]")


@pytest.mark.parametrize("part", [{"type": "input_audio", "input_audio": {"data": "x"}},
                                  {"type": "file", "file": {"file_id": "f"}}])
def test_audio_and_file_parts_are_unsupported(part: dict) -> None:
    error = refused(messages=[{"role": "user", "content": [part]}])
    assert (error.code, error.param) == ("unsupported_parameter", "messages[0].content[0]")


def tool_turns() -> list[dict]:
    return [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "Checking.", "reasoning_content": "plain text",
         "reasoning_details": [
             {"type": "reasoning.text", "text": "think", "signature": "sig1",
              "format": "anthropic-claude-v1", "index": 0},
             {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic-claude-v1",
              "index": 1},
             {"type": "reasoning.encrypted", "data": "other", "format": "openai-responses-v1"}],
         "tool_calls": [
             {"id": "toolu_A", "type": "function",
              "function": {"name": "w", "arguments": "{\"city\": \"Paris\"}"}},
             {"id": "toolu_B", "type": "function", "function": {"name": "now", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "toolu_A", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_B",
         "content": [{"type": "text", "text": "noon"}]},
        {"role": "user", "content": "thanks"}]


def test_tool_round_trip_keeps_thinking_signatures_ids_and_order() -> None:
    out = translate(messages=tool_turns(), reasoning_effort="low")
    assistant, results = out.body["messages"][1:]
    assert assistant == {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "think", "signature": "sig1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_A", "name": "w", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_B", "name": "now", "input": {}}]}
    assert results == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_A", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_B",
         "content": [{"type": "text", "text": "noon"}]},
        {"type": "text", "text": "thanks"}]}
    assert out.body["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_reasoning_content_without_details_is_not_sent() -> None:
    messages = tool_turns()
    del messages[1]["reasoning_details"]
    out = translate(messages=messages)
    assert [b["type"] for b in out.body["messages"][1]["content"]] == ["text", "tool_use",
                                                                      "tool_use"]
    # Anthropic refuses thinking when the pending tool use lost its thinking block.
    out = translate(messages=messages, reasoning_effort="high")
    assert "thinking" not in out.body and out.adjusted == ["reasoning_effort"]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", "3", "\"s\""])
def test_bad_tool_arguments_are_refused_with_their_path(arguments: str) -> None:
    messages = tool_turns()
    messages[1]["tool_calls"][1]["function"]["arguments"] = arguments
    error = refused(messages=messages)
    assert (error.code, error.param) == ("invalid_request",
                                         "messages[1].tool_calls[1].function.arguments")


def test_tools_and_tool_choice_map() -> None:
    tools = [{"type": "function", "function": {"name": "a", "description": "A",
                                               "parameters": {"type": "object", "properties": {
                                                   "x": {"type": "string"}}}}},
             {"type": "function", "function": {"name": "b"}}]
    body = translate(tools=tools).body
    assert body["tools"] == [
        {"name": "a", "description": "A",
         "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}},
        {"name": "b", "input_schema": {"type": "object", "properties": {}}}]
    assert "tool_choice" not in body
    named = {"type": "function", "function": {"name": "a"}}
    for choice, wanted in [("none", {"type": "none"}), ("auto", {"type": "auto"}),
                          ("required", {"type": "any"}), (named, {"type": "tool", "name": "a"})]:
        assert translate(tools=tools, tool_choice=choice).body["tool_choice"] == wanted
    assert translate(tools=tools, parallel_tool_calls=False).body["tool_choice"] == {
        "type": "auto", "disable_parallel_tool_use": True}
    assert translate(tools=tools, tool_choice="required", parallel_tool_calls=False).body[
        "tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert translate(tools=tools, tool_choice="none", parallel_tool_calls=False).body[
        "tool_choice"] == {"type": "none"}


def test_sampling_limits_and_headers_lists() -> None:
    out = translate(temperature=1.5, top_p=0.9, top_k=40, stop="END", user="u-1", seed=7,
                    presence_penalty=0.5, foo=1, metadata={"k": "v"}, frequency_penalty=None,
                    logit_bias={"1": 2}, service_tier="auto", stream=True,
                    stream_options={"include_usage": True}, max_completion_tokens=99)
    body = out.body
    assert (body["temperature"], body["top_p"], body["top_k"]) == (1, 0.9, 40)
    assert body["stop_sequences"] == ["END"] and body["metadata"] == {"user_id": "u-1"}
    assert body["stream"] is True and body["max_tokens"] == 4096
    assert out.dropped == ["seed", "presence_penalty", "foo", "metadata", "logit_bias",
                           "service_tier"]
    assert out.adjusted == ["temperature"]


def test_whitespace_stop_sequences_are_named() -> None:
    out = translate(stop=["\n", "END"])
    assert out.body["stop_sequences"] == ["END"] and out.adjusted == ["stop"]
    out = translate(stop="\n\n")
    assert "stop_sequences" not in out.body and out.dropped == ["stop"]


def test_reasoning_effort_budgets_stay_below_max_tokens() -> None:
    for effort, budget in [("low", 1024), ("medium", 4096), ("high", 16384)]:
        body = translate(limit=32000, reasoning_effort=effort).body
        assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    # A budget that does not fit is halved, so the answer keeps room, and named as adjusted.
    out = translate(limit=5000, reasoning_effort="high")
    assert out.body["thinking"]["budget_tokens"] == 2500 and out.adjusted == ["reasoning_effort"]
    out = translate(limit=1024, reasoning_effort="low")
    assert "thinking" not in out.body and out.adjusted == ["reasoning_effort"]
    assert "thinking" not in translate(reasoning_effort="none").body


def test_thinking_drops_temperature_and_top_k_and_raises_top_p() -> None:
    out = translate(limit=8000, temperature=0.2, top_k=5, top_p=0.5, reasoning_effort="medium")
    assert "temperature" not in out.body and "top_k" not in out.body
    assert out.body["top_p"] == 0.95
    assert out.dropped == ["temperature", "top_k"] and out.adjusted == ["top_p"]


def test_json_schema_becomes_one_forced_tool() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema,
                                                   "strict": True}}
    tools = [{"type": "function", "function": {"name": "a"}}]
    out = translate(response_format=fmt, tools=tools, reasoning_effort="low")
    assert out.body["tools"][-1]["name"] == "person"
    assert out.body["tools"][-1]["input_schema"] == schema
    assert out.body["tool_choice"] == {"type": "tool", "name": "person"}
    assert "thinking" not in out.body and out.adjusted == ["reasoning_effort"]
    assert forced_tool_name({"response_format": fmt}) == "person"
    json_object = translate(response_format={"type": "json_object"}).body
    assert json_object["tools"][0]["input_schema"] == {"type": "object"}
    assert json_object["tool_choice"] == {"type": "tool", "name": "json_output"}
    assert forced_tool_name({"response_format": {"type": "json_object"}}) == "json_output"
    assert forced_tool_name({"response_format": {"type": "text"}}) is None
    assert "tools" not in translate(response_format={"type": "text"}).body


@pytest.mark.parametrize(("fields", "param"), [
    ({"n": 2}, "n"), ({"logprobs": True}, "logprobs"), ({"top_logprobs": 2}, "top_logprobs"),
    ({"audio": {"voice": "x"}}, "audio"), ({"prediction": {"type": "content"}}, "prediction"),
    ({"store": True}, "store"), ({"modalities": ["text", "audio"]}, "modalities"),
    ({"functions": [{"name": "f"}]}, "functions")])
def test_semantic_parameters_are_refused_by_name(fields: dict, param: str) -> None:
    error = refused(**fields)
    assert (error.code, error.param) == ("unsupported_parameter", param)
    assert "not supported by the chosen provider" in error.message


def test_harmless_values_of_semantic_parameters_pass() -> None:
    out = translate(n=1, logprobs=False, store=False, modalities=["text"], top_logprobs=0)
    assert out.dropped == [] and out.adjusted == []


def test_consecutive_same_role_turns_merge() -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"}, {"role": "assistant", "content": ""},
                {"role": "assistant", "content": [{"type": "text", "text": "d"}]}]
    turns = translate(messages=messages).body["messages"]
    assert [(t["role"], [b["text"] for b in t["content"]]) for t in turns] == [
        ("user", ["a", "b"]), ("assistant", ["c", "d"])]


@pytest.mark.parametrize(("fields", "param"), [
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"response_format": {"type": "yaml"}}, "response_format.type"),
    ({"temperature": "hot"}, "temperature"), ({"stop": [1]}, "stop"), ({"user": 5}, "user")])
def test_malformed_fields_are_invalid_requests(fields: dict, param: str) -> None:
    error = refused(**fields)
    assert (error.code, error.param) == ("invalid_request", param)


def test_the_client_body_is_not_modified() -> None:
    messages = tool_turns()
    body = {"model": "m", "messages": messages, "tools": [{"type": "function", "function": {
        "name": "w", "parameters": {"properties": {}}}}], "temperature": 2}
    snapshot = repr(body)
    request(body, "claude", 100)
    assert repr(body) == snapshot


@given(st.lists(st.tuples(st.text("abcXYZ019_-", min_size=1, max_size=12),
                          st.dictionaries(st.text(max_size=4), st.integers(), max_size=3)),
                min_size=1, max_size=6, unique_by=lambda call: call[0]),
       st.booleans())
def test_tool_ids_and_order_survive_any_parallel_call_count(calls, user_after: bool) -> None:
    messages = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": i, "type": "function",
                     "function": {"name": "f", "arguments": json.dumps(value)}}
                    for i, value in calls]}]
    messages += [{"role": "tool", "tool_call_id": i, "content": f"r{i}"} for i, _ in calls]
    messages += [{"role": "user", "content": "next"}] if user_after else []
    turns = translate(messages=messages).body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [(b["id"], b["input"]) for b in turns[1]["content"]] == calls
    results = [b for b in turns[2]["content"] if b["type"] == "tool_result"]
    assert [(b["tool_use_id"], b["content"]) for b in results] == [(i, f"r{i}") for i, _ in calls]
    assert len(turns[2]["content"]) == len(calls) + user_after
