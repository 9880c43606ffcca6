"""Proves FakeAnthropic's messages (JSON, SSE, tools, thinking, stops) in the real anthropic SDK."""

from __future__ import annotations

import re

import anthropic
import pytest
from fakes.anthropic_reply import thinking_signature
from fakes.anthropic_upstream import Behaviour, FakeAnthropic

from fake_anthropic_sdk.support import raw_post

MODEL = "claude-sonnet-4-5-20250929"
USER = [{"role": "user", "content": "hello there world"}]
TOOLS = [{"name": name, "description": "d", "input_schema": {"type": "object"}}
         for name in ("get_weather", "get_time")]
THINKING = {"type": "enabled", "budget_tokens": 1024}
PNG = "iVBORw0KGgo="



def test_create_returns_a_message_the_sdk_parses(fake: FakeAnthropic,
                                                 client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=USER,
                                                   system="be brief")
    message = raw.parse()
    assert re.fullmatch(r"req_\w+", raw.headers["request-id"])
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_") and message.model == MODEL
    assert [(b.type, b.text) for b in message.content] == [("text", "Echo: hello there world")]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (5, 4)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (0, 0)

    [received] = fake.message_requests()
    assert received.headers["authorization"] == f"Bearer {fake.api_key}"
    assert received.headers["anthropic-version"]
    assert received.json["max_tokens"] == 100


def test_stream_events_and_final_message(fake: FakeAnthropic,
                                         client: anthropic.Anthropic) -> None:
    fake.script(Behaviour(text="one two three four five", chunk_words=2, input_tokens=11,
                          cache_read=7, cache_creation=3))
    with client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
        events = list(stream)
        final = stream.get_final_message()
    raw = [e for e in events if e.type not in ("text",)]
    assert [e.type for e in raw] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    start = raw[0].message
    assert start.content == [] and start.stop_reason is None
    assert (start.usage.input_tokens, start.usage.output_tokens) == (11, 1)
    assert (start.usage.cache_read_input_tokens, start.usage.cache_creation_input_tokens) \
        == (7, 3)
    assert [e.delta.text for e in raw if e.type == "content_block_delta"] \
        == ["one two", " three four", " five"]
    assert all(e.index == 0 for e in raw[1:6])
    assert raw[6].delta.stop_reason == "end_turn" and raw[6].usage.output_tokens == 5
    assert final.content[0].text == "one two three four five"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 5)


def test_raw_sse_has_event_lines_ping_and_headers(fake: FakeAnthropic) -> None:
    response = raw_post(fake, {"model": MODEL, "max_tokens": 10, "messages": USER,
                               "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"].startswith("req_")
    frames = response.text.strip().split("\n\n")
    names = [f.split("\n")[0] for f in frames]
    assert names[:2] == ["event: message_start", "event: ping"]
    assert names[-2:] == ["event: message_delta", "event: message_stop"]
    assert all(f.split("\n")[1].startswith("data: {") for f in frames)


def test_parallel_tool_uses_create_and_stream(fake: FakeAnthropic,
                                              client: anthropic.Anthropic) -> None:
    calls = (("get_weather", {"city": "Paris", "unit": "celsius"}), ("get_time", {"tz": "CET"}))
    fake.script(Behaviour(tool_uses=calls), Behaviour(tool_uses=calls))
    message = client.messages.create(model=MODEL, max_tokens=100, messages=USER, tools=TOOLS)
    assert message.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in message.content] \
        == [("tool_use", name, arguments) for name, arguments in calls]
    assert all(re.fullmatch(r"toolu_[0-9a-f]{24}", b.id) for b in message.content)
    assert message.usage.output_tokens == 2

    with client.messages.stream(model=MODEL, max_tokens=100, messages=USER,
                                tools=TOOLS) as stream:
        events = list(stream)
        final = stream.get_final_message()
    fragments = [e.delta.partial_json for e in events
                 if e.type == "content_block_delta" and e.index == 0]
    assert fragments[0] == "" and len(fragments) >= 3
    starts = [e.content_block for e in events if e.type == "content_block_start"]
    assert [(b.name, b.input) for b in starts] == [("get_weather", {}), ("get_time", {})]
    assert [b.input for b in final.content] == [arguments for _, arguments in calls]
    assert final.stop_reason == "tool_use"


def test_default_tool_round_trip_and_pairing_checks(fake: FakeAnthropic,
                                                    client: anthropic.Anthropic) -> None:
    first = client.messages.create(model=MODEL, max_tokens=100, messages=USER, tools=TOOLS)
    [call] = first.content
    assert (call.name, call.input, first.stop_reason) == ("get_weather", {}, "tool_use")
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "sunny 21C"}
    turns = [*USER, {"role": "assistant", "content": first.content},
             {"role": "user", "content": [result]}]
    second = client.messages.create(model=MODEL, max_tokens=100, messages=turns, tools=TOOLS)
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "Echo: sunny 21C"

    stray = {**result, "tool_use_id": "toolu_x"}
    wrong = [*turns[:2], {"role": "user", "content": [result, stray]}]
    with pytest.raises(anthropic.BadRequestError, match="unexpected `tool_use_id`"):
        client.messages.create(model=MODEL, max_tokens=100, messages=wrong, tools=TOOLS)
    unanswered = [*turns[:2], {"role": "user", "content": "and?"}]
    with pytest.raises(anthropic.BadRequestError, match="without `tool_result`"):
        client.messages.create(model=MODEL, max_tokens=100, messages=unanswered, tools=TOOLS)
    chosen = client.messages.create(model=MODEL, max_tokens=100, messages=USER, tools=TOOLS,
                                    tool_choice={"type": "tool", "name": "get_time"})
    assert chosen.content[0].name == "get_time"


def test_thinking_across_two_tool_turns_must_be_sent_back(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    def ask(messages: list[dict[str, object]]) -> anthropic.types.Message:
        return client.messages.create(model=MODEL, max_tokens=2048, thinking=THINKING,
                                      messages=messages, tools=TOOLS)

    first = ask(USER)
    thinking, call = first.content
    assert thinking.type == "thinking" and thinking.signature == \
        thinking_signature(thinking.thinking)
    assert first.usage.output_tokens == len(thinking.thinking.split()) + 1
    assert first.usage.output_tokens_details.thinking_tokens == len(thinking.thinking.split())

    fake.script(Behaviour(tool_uses=(("get_time", {}),)))
    turns = [*USER, {"role": "assistant", "content": first.content},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                           "content": "sunny"}]}]
    second = ask(turns)
    # No interleaved-thinking beta: no new thinking after a tool result.
    [second_call] = second.content
    turns += [{"role": "assistant", "content": second.content},
              {"role": "user", "content": [{"type": "tool_result",
                                            "tool_use_id": second_call.id, "content": "noon"}]}]
    assert ask(turns).content[0].text == "Echo: noon"

    dropped = [*turns[:1], {"role": "assistant", "content": [call]}, *turns[2:]]
    with pytest.raises(anthropic.BadRequestError, match="Expected `thinking` or "
                                                        "`redacted_thinking`, but found "
                                                        "`tool_use`"):
        ask(dropped)
    forged = {"type": "thinking", "thinking": "edited", "signature": thinking.signature}
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
        ask([*turns[:1], {"role": "assistant", "content": [forged, call]}, turns[2]])
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    assert ask([*turns[:1], {"role": "assistant", "content": [redacted, call]}, turns[2]])

    betas = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=2048, thinking=THINKING, messages=turns[:3], tools=TOOLS,
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"}).parse()
    assert [b.type for b in betas.content] == ["thinking", "text"]
    assert fake.message_requests()[-1].headers["anthropic-beta"].startswith("interleaved")


def test_thinking_and_redacted_thinking_stream(fake: FakeAnthropic,
                                               client: anthropic.Anthropic) -> None:
    fake.script(Behaviour(thinking="a b c", redacted_thinking="ZW5j", text="done"))
    with client.messages.stream(model=MODEL, max_tokens=2048, thinking=THINKING,
                                messages=USER) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
    assert deltas == ["thinking_delta"] * 3 + ["signature_delta", "text_delta"]
    assert [b.type for b in final.content] == ["thinking", "redacted_thinking", "text"]
    assert final.content[0].signature == thinking_signature("a b c")
    assert final.content[1].data == "ZW5j"
    assert final.usage.output_tokens == 4


def test_max_tokens_stop_sequences_and_stop_reason(fake: FakeAnthropic,
                                                   client: anthropic.Anthropic) -> None:
    fake.default = Behaviour(text="one two three four")
    cut = client.messages.create(model=MODEL, max_tokens=2, messages=USER)
    assert (cut.content[0].text, cut.stop_reason, cut.usage.output_tokens) \
        == ("one two", "max_tokens", 2)
    stopped = client.messages.create(model=MODEL, max_tokens=10, messages=USER,
                                     stop_sequences=[" three"])
    assert (stopped.content[0].text, stopped.stop_reason, stopped.stop_sequence) \
        == ("one two", "stop_sequence", " three")
    fake.script(Behaviour(stop_reason="refusal"))
    assert client.messages.create(model=MODEL, max_tokens=10,
                                  messages=USER).stop_reason == "refusal"


def test_images_are_recorded_as_received(fake: FakeAnthropic,
                                         client: anthropic.Anthropic) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}}
    client.messages.create(model=MODEL, max_tokens=10, messages=[
        {"role": "user", "content": [image, {"type": "text", "text": "what is it"}]}])
    assert fake.image_blocks() == [image]
    assert fake.image_blocks()[0]["source"]["media_type"] == "image/png"
