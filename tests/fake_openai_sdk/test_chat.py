"""Proves FakeOpenAI's chat completions (JSON, stream, tools, reasoning) in the real openai SDK."""

from __future__ import annotations

import openai
from fakes.openai_upstream import Behaviour, FakeOpenAI

USER = [{"role": "user", "content": "hello there world"}]




def test_non_stream_completion_parses_in_the_sdk(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=USER)

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello there world"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 3
    assert completion.usage.completion_tokens == 4
    assert completion.usage.total_tokens == 7
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.usage.completion_tokens_details.reasoning_tokens == 0

    [received] = fake.requests
    assert (received.method, received.path) == ("POST", "/v1/chat/completions")
    assert received.headers["authorization"] == "Bearer x"
    assert received.json == {"model": "gpt-4o-mini", "messages": USER}


def test_stream_with_include_usage_puts_usage_on_the_last_chunk(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.script(Behaviour(content="one two three four five", words_per_chunk=2,
                          prompt_tokens=11))
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four five"
    contents = [c.choices[0].delta.content for c in chunks[1:] if c.choices
                and c.choices[0].delta.content]
    assert contents == ["one two", " three four", " five"]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens,
            last.usage.total_tokens) == (11, 5, 16)


def test_stream_without_include_usage_sends_no_usage(fake: FakeOpenAI,
                                                     client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="m", messages=USER, stream=True))
    assert all(c.usage is None and c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_max_tokens_truncates_with_finish_reason_length(fake: FakeOpenAI,
                                                        client: openai.OpenAI) -> None:
    fake.default = Behaviour(content="one two three four")
    completion = client.chat.completions.create(model="m", messages=USER, max_tokens=2)
    assert completion.choices[0].message.content == "one two"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 2

    chunks = list(client.chat.completions.create(model="m", messages=USER, stream=True,
                                                 max_completion_tokens=3))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two three"
    assert chunks[-1].choices[0].finish_reason == "length"


def test_tools_get_a_tool_call_to_the_first_tool(fake: FakeOpenAI,
                                                 client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
             for name in ("get_weather", "get_time")]
    completion = client.chat.completions.create(model="m", messages=USER, tools=tools)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert (call.function.name, call.function.arguments) == ("get_weather", "{}")

    chunks = list(client.chat.completions.create(model="m", messages=USER, tools=tools,
                                                 stream=True))
    arguments = "".join(
        call.function.arguments
        for c in chunks for call in (c.choices[0].delta.tool_calls or [])
    )
    assert chunks[0].choices[0].delta.tool_calls[0].function.name == "get_weather"
    assert arguments == "{}"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_script_is_consumed_in_order_then_default_applies(fake: FakeOpenAI,
                                                          client: openai.OpenAI) -> None:
    fake.script(Behaviour(content="first"), Behaviour(content="second"))
    answers = [client.chat.completions.create(model="m", messages=USER)
               .choices[0].message.content for _ in range(3)]
    assert answers == ["first", "second", "Echo: hello there world"]


def test_usage_can_be_left_out(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.script(Behaviour(report_usage=False), Behaviour(report_usage=False))
    assert client.chat.completions.create(model="m", messages=USER).usage is None
    chunks = list(client.chat.completions.create(model="m", messages=USER, stream=True,
                                                 stream_options={"include_usage": True}))
    assert all(c.usage is None and c.choices for c in chunks)


def test_prompt_tokens_count_words_across_text_parts(fake: FakeOpenAI,
                                                     client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "what is"},
                                     {"type": "text", "text": "two plus two"}]},
    ]
    completion = client.chat.completions.create(model="m", messages=messages)
    assert completion.usage is not None and completion.usage.prompt_tokens == 7
    assert completion.choices[0].message.content == "Echo: what is two plus two"


WEATHER_TOOLS = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
                 for name in ("get_weather", "get_time")]


def test_parallel_tool_calls_parse_and_stream_in_fragments(fake: FakeOpenAI,
                                                           client: openai.OpenAI) -> None:
    calls = (("get_weather", '{"city": "Paris"}'), ("get_time", '{"zone": "CET"}'))
    fake.script(Behaviour(tool_calls=calls), Behaviour(tool_calls=calls))
    completion = client.chat.completions.create(model="m", messages=USER, tools=WEATHER_TOOLS)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [(c.function.name, c.function.arguments) for c in choice.message.tool_calls] \
        == list(calls)
    assert all(c.id.startswith("call_") for c in choice.message.tool_calls)
    assert completion.usage is not None and completion.usage.completion_tokens == 2

    chunks = list(client.chat.completions.create(model="m", messages=USER, tools=WEATHER_TOOLS,
                                                 stream=True))
    deltas = [call for c in chunks for call in (c.choices[0].delta.tool_calls or [])]
    headers = [d for d in deltas if d.id is not None]
    assert [(d.index, d.type, d.function.name, d.function.arguments) for d in headers] \
        == [(0, "function", "get_weather", ""), (1, "function", "get_time", "")]
    fragments = [d for d in deltas if d.id is None]
    assert all(d.function.name is None and d.type is None for d in fragments)
    for index, (_, arguments) in enumerate(calls):
        mine = [d.function.arguments for d in fragments if d.index == index]
        assert len(mine) >= 2 and "".join(mine) == arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_tool_result_is_answered_with_text(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="m", messages=USER, tools=WEATHER_TOOLS)
    [call] = first.choices[0].message.tool_calls
    messages = [*USER, first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "sunny 21C"}]
    second = client.chat.completions.create(model="m", messages=messages, tools=WEATHER_TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Echo: sunny 21C"
    assert second.choices[0].message.tool_calls is None
    # tool_choice steers the default call; "none" forbids it.
    named = client.chat.completions.create(
        model="m", messages=USER, tools=WEATHER_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert named.choices[0].message.tool_calls[0].function.name == "get_time"
    none = client.chat.completions.create(model="m", messages=USER, tools=WEATHER_TOOLS,
                                          tool_choice="none")
    assert none.choices[0].message.content == "Echo: hello there world"


def test_reasoning_and_cached_tokens(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    behaviour = Behaviour(content="four", reasoning="think step by step", cached_tokens=2)
    fake.script(behaviour, behaviour)
    completion = client.chat.completions.create(model="m", messages=USER)
    message = completion.choices[0].message
    assert message.model_extra["reasoning_content"] == "think step by step"
    assert message.content == "four"
    usage = completion.usage
    assert usage is not None
    assert (usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens) == (5, 4)
    assert usage.prompt_tokens_details.cached_tokens == 2

    chunks = list(client.chat.completions.create(model="m", messages=USER, stream=True,
                                                 stream_options={"include_usage": True}))
    kinds = [next(iter(c.choices[0].delta.model_extra), "content")
             for c in chunks[1:-2] if c.choices]
    assert kinds == ["reasoning_content"] * 4 + ["content"]
    assert "".join(c.choices[0].delta.model_extra.get("reasoning_content", "")
                   for c in chunks if c.choices) == "think step by step"
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 4


def test_extra_headers_on_success_responses(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    extra = (("set-cookie", "a=b"), ("x-request-id", "req_up_1"), ("openai-processing-ms", "12"))
    fake.script(Behaviour(extra_headers=extra), Behaviour(extra_headers=extra))
    raw = client.chat.completions.with_raw_response.create(model="m", messages=USER)
    assert raw.headers["x-request-id"] == "req_up_1"
    assert raw.headers["set-cookie"] == "a=b"
    assert raw.parse().choices[0].message.content == "Echo: hello there world"
    with client.chat.completions.with_streaming_response.create(
            model="m", messages=USER, stream=True) as streamed:
        assert streamed.headers["openai-processing-ms"] == "12"
        assert streamed.headers["content-type"].startswith("text/event-stream")
