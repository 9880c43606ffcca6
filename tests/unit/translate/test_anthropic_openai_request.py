"""Anthropic Messages request -> OpenAI chat-completions request (9.6, 9.10, 9.11)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.translate.anthropic_openai.request import request
from domain.errors import DomainError


def body(*messages: dict, **fields) -> dict:
    return {"model": "claude-x", "max_tokens": 256,
            "messages": list(messages) or [{"role": "user", "content": "Hi"}], **fields}


def user(content) -> dict:
    return {"role": "user", "content": content}


def assistant(content) -> dict:
    return {"role": "assistant", "content": content}


def translate(b: dict):
    return request(b, "gpt-4o", 1000)


def refused(b: dict, code: str = "unsupported_parameter") -> str | None:
    with pytest.raises(DomainError) as caught:
        translate(b)
    assert caught.value.code == code
    return caught.value.param


def test_minimal_request() -> None:
    out = translate(body())
    assert out.body == {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}],
                        "max_completion_tokens": 1000}
    assert out.dropped == [] and out.adjusted == []


@pytest.mark.parametrize("system", [
    "Be brief.\n\nUse French.",
    [{"type": "text", "text": "Be brief."},
     {"type": "text", "text": "Use French.", "cache_control": {"type": "ephemeral"}}]])
def test_system_becomes_first_message(system) -> None:
    out = translate(body(system=system))
    assert out.body["messages"][0] == {"role": "system", "content": "Be brief.\n\nUse French."}


def test_user_blocks_become_parts() -> None:
    out = translate(body(user([
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}}])))
    assert out.body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}]}]


def test_tool_results_come_first_in_order() -> None:
    out = translate(body(
        user("Weather in Paris and Oslo?"),
        assistant([{"type": "text", "text": "Checking."},
                   {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"c": "Paris"}},
                   {"type": "tool_use", "id": "toolu_2", "name": "w", "input": {"c": "Oslo"}}]),
        user([{"type": "text", "text": "Also, hurry."},
              {"type": "tool_result", "tool_use_id": "toolu_1", "content": "12°C"},
              {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
               "content": [{"type": "text", "text": "timeout"}, {"type": "text", "text": "x"}]}])))
    assert out.body["messages"][1:] == [
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "w", "arguments": '{"c":"Paris"}'}},
            {"id": "toolu_2", "type": "function",
             "function": {"name": "w", "arguments": '{"c":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "12°C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "timeout\n\nx"},
        {"role": "user", "content": [{"type": "text", "text": "Also, hurry."}]}]


def test_thinking_blocks_travel_as_reasoning_details() -> None:
    out = translate(body(user("q"), assistant([
        {"type": "thinking", "thinking": "Plan.", "signature": "sig=="},
        {"type": "redacted_thinking", "data": "enc=="},
        {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {}}])))
    message = out.body["messages"][1]
    assert message["content"] is None
    assert message["reasoning_details"] == [
        {"type": "reasoning.text", "text": "Plan.", "signature": "sig==",
         "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "enc==", "format": "anthropic-claude-v1",
         "index": 1}]
    assert message["tool_calls"][0]["function"]["arguments"] == "{}"


@pytest.mark.parametrize(("block", "param"), [
    ({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}},
     "messages[0].content[1]"),
    ({"type": "tool_result", "tool_use_id": "t", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://x.test/i.png"}}]},
     "messages[0].content[1].content[0]"),
    ({"type": "image", "source": {"type": "file", "file_id": "f"}},
     "messages[0].content[1].source")])
def test_unsupported_blocks_are_named(block, param) -> None:
    assert refused(body(user([{"type": "text", "text": "see"}, block]))) == param


def test_malformed_block_is_invalid_request() -> None:
    assert refused(body(user([{"text": "no type"}])), "invalid_request") == \
        "messages[0].content[0]"


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "w"}, {"type": "function", "function": {"name": "w"}})])
def test_tools_and_tool_choice(choice, expected) -> None:
    schema = {"type": "object", "properties": {"c": {"type": "string"}}}
    out = translate(body(tools=[{"name": "w", "description": "Weather", "input_schema": schema,
                                 "cache_control": {"type": "ephemeral"}}],
                         tool_choice={**choice, "disable_parallel_tool_use": True}))
    assert out.body["tools"] == [{"type": "function", "function": {
        "name": "w", "description": "Weather", "parameters": schema}}]
    assert out.body["tool_choice"] == expected
    assert out.body["parallel_tool_calls"] is False


def test_server_tool_is_refused() -> None:
    assert refused(body(tools=[{"type": "web_search_20250305", "name": "web_search"}])) == \
        "tools[0]"


def test_sampling_stop_user_and_stream() -> None:
    out = translate(body(temperature=0.2, top_p=0.9, top_k=40, stop_sequences=["END", "##"],
                         metadata={"user_id": "u-42"}, stream=True))
    assert out.body == {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}],
                        "max_completion_tokens": 1000, "temperature": 0.2, "top_p": 0.9,
                        "stop": ["END", "##"], "user": "u-42", "stream": True,
                        "stream_options": {"include_usage": True}}
    assert out.dropped == ["top_k"]


def test_too_many_stop_sequences() -> None:
    assert refused(body(stop_sequences=list("abcde"))) == "stop_sequences"


@pytest.mark.parametrize(("thinking", "effort", "dropped"), [
    ({"type": "enabled", "budget_tokens": 1024}, "low", []),
    ({"type": "enabled", "budget_tokens": 2048}, "low", []),
    ({"type": "enabled", "budget_tokens": 8192}, "medium", []),
    ({"type": "enabled", "budget_tokens": 8193}, "high", []),
    ({"type": "disabled"}, None, []),
    ({"type": "adaptive"}, None, ["thinking"]),
    (None, None, [])])
def test_thinking_budget_becomes_effort(thinking, effort, dropped) -> None:
    out = translate(body(thinking=thinking))
    assert out.body.get("reasoning_effort") == effort
    assert out.dropped == dropped


def test_unknown_fields_dropped_in_body_order_and_extensions_kept_quiet() -> None:
    out = translate({"zeta": 1, "model": "m", "service_tier": "auto", "max_tokens": 5,
                     "provider": {"order": ["x"]}, "messages": [user("Hi")], "alpha": 2,
                     "top_k": 3})
    assert out.dropped == ["zeta", "service_tier", "alpha", "top_k"]
    assert not {"zeta", "alpha", "service_tier", "provider", "top_k"} & set(out.body)


@pytest.mark.parametrize("field", ["container", "mcp_servers"])
def test_server_side_features_refused(field) -> None:
    assert refused(body(**{field: {}})) == field


_inputs = st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=6)),
                          max_size=3)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=12), _inputs), min_size=1, max_size=5,
                unique_by=lambda c: c[0]))
def test_tool_ids_order_and_inputs_round_trip(calls: list) -> None:
    uses = [{"type": "tool_use", "id": i, "name": "f", "input": args} for i, args in calls]
    results = [{"type": "tool_result", "tool_use_id": i, "content": f"r{n}"}
               for n, (i, _) in enumerate(reversed(calls))]
    out = translate(body(user("go"), assistant(uses), user(results)))
    messages = out.body["messages"]
    assert [(c["id"], json.loads(c["function"]["arguments"]))
            for c in messages[1]["tool_calls"]] == calls
    assert [m["tool_call_id"] for m in messages[2:]] == [i for i, _ in reversed(calls)]
    assert all(m["role"] == "tool" for m in messages[2:])
