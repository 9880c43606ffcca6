"""The accept lines of spec 9.11 spelled out one by one, beside the matrix cells that cover
them in passing: thinking signatures sent back from the OpenAI SDK, parallel tool_use
blocks as indexed OpenAI deltas, a data-URI PNG as a base64 block, and cache reads as
cached_tokens."""

from __future__ import annotations

import json

import pytest
from fakes.anthropic_reply import DEFAULT_THINKING, thinking_signature
from fakes.anthropic_upstream import Behaviour

from e2e.anthropic_support import ANTHROPIC_MODEL, price_anthropic
from e2e.matrix_clients import merge_chunks
from e2e.matrix_support import CALLS, PNG
from e2e.support import customer, request_record, sdk

TOOLS = [{"type": "function", "function": {"name": name, "parameters": {
    "type": "object", "properties": {arg: {"type": "string"}}}}}
    for name, arg in (("get_weather", "city"), ("get_time", "tz"))]


@pytest.fixture
def client(served, fake_anthropic):
    price_anthropic(served, fake_anthropic)
    return sdk(served, customer(served).key)


def test_the_openai_sdk_sends_a_thinking_block_back_to_anthropic_with_its_signature(
        client, fake_anthropic):
    # No scripted thought: the fake thinks only because the request enabled thinking.
    fake_anthropic.script(Behaviour(tool_uses=CALLS), Behaviour(text="Sunny at noon"))
    messages = [{"role": "user", "content": "Weather and time in Paris?"}]

    first = client.chat.completions.create(model=ANTHROPIC_MODEL, messages=messages,
                                           tools=TOOLS, reasoning_effort="low",
                                           max_completion_tokens=4096)

    message = first.choices[0].message
    assert message.model_extra["reasoning_content"] == DEFAULT_THINKING
    details = message.model_extra["reasoning_details"]
    assert [d["signature"] for d in details] == [thinking_signature(DEFAULT_THINKING)]
    messages.append({"role": "assistant", "content": None, "reasoning_details": details,
                     "tool_calls": [c.to_dict() for c in message.tool_calls]})
    messages += [{"role": "tool", "tool_call_id": c.id, "content": "ok"}
                 for c in message.tool_calls]
    second = client.chat.completions.create(model=ANTHROPIC_MODEL, messages=messages,
                                            tools=TOOLS, reasoning_effort="low",
                                            max_completion_tokens=4096)

    assert second.choices[0].message.content == "Sunny at noon"
    sent = fake_anthropic.message_requests()[-1].json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assistant = sent["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {"type": "thinking", "thinking": DEFAULT_THINKING,
                                       "signature": thinking_signature(DEFAULT_THINKING)}
    assert [b["id"] for b in assistant["content"][1:]] == [c.id for c in message.tool_calls]


def test_two_parallel_tool_use_blocks_stream_as_openai_deltas_with_index_0_and_1(
        client, fake_anthropic):
    fake_anthropic.script(Behaviour(tool_uses=CALLS))

    stream = client.chat.completions.create(
        model=ANTHROPIC_MODEL, messages=[{"role": "user", "content": "Weather and time?"}],
        tools=TOOLS, stream=True, stream_options={"include_usage": True})
    chunks = [chunk.to_dict() for chunk in stream]

    fragments = [f for c in chunks if c["choices"]
                 for f in c["choices"][0]["delta"].get("tool_calls") or []]
    assert sorted({f["index"] for f in fragments}) == [0, 1]
    # Each call opens with its id and name; the fragments after it carry arguments only.
    openers = [f for f in fragments if f.get("id")]
    assert [(f["index"], f["function"]["name"]) for f in openers] == \
        [(0, "get_weather"), (1, "get_time")]
    assert all(o["id"].startswith("toolu_") for o in openers)
    message, finish, _, _ = merge_chunks(chunks)
    assert finish == "tool_calls"
    assert [json.loads(c["function"]["arguments"]) for c in message["tool_calls"]] == \
        [args for _, args in CALLS]
    assert sum(1 for f in fragments if f["function"].get("arguments")) > 2  # really streamed


def test_a_data_uri_png_reaches_anthropic_as_a_base64_png_block(client, fake_anthropic):
    reply = client.chat.completions.create(model=ANTHROPIC_MODEL, messages=[{
        "role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}])

    assert reply.choices[0].message.content == "Echo: What is this?"
    assert fake_anthropic.image_blocks() == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": PNG}}]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_100_cache_read_tokens_from_anthropic_are_100_cached_tokens(
        served, client, fake_anthropic, stream):
    fake_anthropic.script(Behaviour(text="one two", input_tokens=3, cache_read=100))
    messages = [{"role": "user", "content": "hello"}]

    if stream:
        chunks = client.chat.completions.create(model=ANTHROPIC_MODEL, messages=messages,
                                                stream=True,
                                                stream_options={"include_usage": True})
        request_id = chunks.response.headers["x-request-id"]
        usage = list(chunks)[-1].usage
    else:
        raw = client.chat.completions.with_raw_response.create(model=ANTHROPIC_MODEL,
                                                               messages=messages)
        request_id, usage = raw.headers["x-request-id"], raw.parse().usage

    assert usage.prompt_tokens_details.cached_tokens == 100
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (103, 2, 105)
    assert request_record(served, request_id)["charged_micros"] == 103 * 1 + 2 * 2
