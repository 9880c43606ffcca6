"""Anthropic stream events -> OpenAI chat chunks: golden files byte for byte (9.7), the
official OpenAI SDK's stream parser and accumulator over every output, and (hypothesis)
agreement with the non-streaming translation for any mix of blocks and split points."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx2
import msgspec
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from application.translate.common import encode, sse_data
from application.translate.openai_anthropic.response import response
from application.translate.openai_anthropic.stream import AnthropicToChatStream
from application.translate.sse import SseParser

GOLDEN = Path(__file__).parents[2] / "golden" / "openai_anthropic"
ID, CREATED, MODEL = "chatcmpl-GoldenOpenAIAnthropic00000001", 1735689600, "anthropic/claude-test"
# case -> (recorded upstream stream, include_usage, forced structured-output tool)
CASES = {
    "text": ("text", True, None),
    "text_no_usage": ("text", False, None),
    "parallel_tools": ("parallel_tools", True, None),
    "thinking_tool": ("thinking_tool", True, None),
    "redacted_thinking": ("redacted_thinking", True, None),
    "max_tokens": ("max_tokens", False, None),
    "cache_usage": ("cache_usage", True, None),
    "structured_output": ("structured_output", True, "person"),
    "tool_no_args": ("tool_no_args", False, None),
}


def translate(case: str, read: int = 4096) -> bytes:
    """The relay loop in miniature: upstream bytes in reads of ``read``, each event fed as
    it completes, close at the end, each chunk framed, then [DONE]."""
    source, include_usage, forced = CASES[case]
    raw = (GOLDEN / f"{source}.anthropic.sse").read_bytes()
    stream = AnthropicToChatStream(MODEL, ID, CREATED, include_usage, forced)
    parser, chunks = SseParser(), []
    for start in range(0, len(raw), read):
        for event in parser.feed(raw[start:start + read]):
            chunks += stream.feed(event.event, msgspec.json.decode(event.data))
    assert stream.stopped
    chunks += stream.close()
    return b"".join(sse_data(chunk) for chunk in chunks) + b"data: [DONE]\n\n"


def sdk_chunks(body: bytes) -> list[ChatCompletionChunk]:
    client = openai.OpenAI(api_key="x", base_url="http://x")
    reply = httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body,
                            request=httpx2.Request("POST", "http://x/chat/completions"))
    return list(openai.Stream(cast_to=ChatCompletionChunk, response=reply, client=client))


def accumulate(body: bytes):
    """The SDK's own accumulator (its snapshot: the final parse refuses "length" stops)."""
    state = ChatCompletionStreamState()
    for chunk in sdk_chunks(body):
        state.handle_chunk(chunk)
    return state.current_completion_snapshot


def final(case: str):
    return accumulate(expected(case))


def expected(case: str) -> bytes:
    return (GOLDEN / f"{case}.openai.sse").read_bytes()


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_byte_for_byte(case: str) -> None:
    if os.environ.get("GOLDEN_UPDATE") == "1":  # regenerate, then review the diff by hand
        (GOLDEN / f"{case}.openai.sse").write_bytes(translate(case))
    assert translate(case) == expected(case)
    assert translate(case, read=5) == expected(case)  # read boundaries change nothing


@pytest.mark.parametrize("case", sorted(CASES))
def test_sdk_iterates_every_golden_output(case: str) -> None:
    chunks = sdk_chunks(expected(case))
    assert chunks and chunks[0].choices[0].delta.role == "assistant"
    assert {(c.id, c.created, c.model) for c in chunks} == {(ID, CREATED, MODEL)}
    with_choices = [c for c in chunks if c.choices]
    assert [c.choices[0].finish_reason is not None for c in with_choices][-1]
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == (1 if CASES[case][1] else 0)
    assert usage_chunks == [] or chunks[-1] is usage_chunks[0]


def test_parallel_tools_get_indexes_0_and_1_with_complete_arguments() -> None:
    chunks = sdk_chunks(expected("parallel_tools"))
    firsts = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []
              if call.id]
    assert [(c.index, c.id, c.function.name) for c in firsts] == [
        (0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"),
        (1, "toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather")]
    choice = final("parallel_tools").choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check both cities."
    assert [json.loads(c.function.arguments) for c in choice.message.tool_calls] == [
        {"city": "Paris", "unit": "c"}, {"city": "Tōkyō", "unit": "c"}]


def test_thinking_signature_survives_and_usage_prefers_message_delta() -> None:
    chunks = [json.loads(e.data) for e in SseParser().feed(expected("thinking_tool"))
              if e.data != "[DONE]"]
    details = [d for c in chunks if c["choices"]
               for d in c["choices"][0]["delta"].get("reasoning_details", [])]
    assert details == [{"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0,
                        "text": "The user wants the weather in Paris.\nI should call get_weather.",
                        "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+G"
                                     "bhD7kGHTKpCdDoJ2gTtY/bZDCG8Gr9+wpMiHs1q4Bk/lGmPHqI9CV4t"
                                     "bLNxgCMA=="}]
    assert chunks[-1]["usage"]["prompt_tokens"] == 396
    assert chunks[-1]["usage"]["completion_tokens"] == 87
    assert final("thinking_tool").choices[0].message.tool_calls[0].function.arguments == (
        "{\"city\": \"Paris\"}")


def test_redacted_thinking_keeps_its_data_in_order() -> None:
    chunks = [json.loads(e.data) for e in SseParser().feed(expected("redacted_thinking"))
              if e.data != "[DONE]"]
    details = [d for c in chunks if c["choices"]
               for d in c["choices"][0]["delta"].get("reasoning_details", [])]
    assert [(d["type"], d["index"]) for d in details] == [("reasoning.encrypted", 0),
                                                          ("reasoning.text", 1)]
    assert details[0]["data"].startswith("EmwKAhgBEgy3va3pzix")


def test_cache_read_tokens_reach_cached_tokens() -> None:
    usage = final("cache_usage").usage
    assert usage.prompt_tokens == 170 and usage.prompt_tokens_details.cached_tokens == 100
    assert usage.completion_tokens == 12 and usage.total_tokens == 182


def test_max_tokens_is_length_and_structured_output_is_content() -> None:
    assert final("max_tokens").choices[0].finish_reason == "length"
    choice = final("structured_output").choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert json.loads(choice.message.content) == {"name": "Ada", "born": 1815}
    assert final("tool_no_args").choices[0].message.tool_calls[0].function.arguments == "{}"


def test_ping_error_and_unknown_events_yield_nothing() -> None:
    stream = AnthropicToChatStream(MODEL, ID, CREATED, True)
    for event, data in [("ping", {"type": "ping"}), ("error", {"type": "error"}),
                        ("brand_new", {}), ("message_start", "not a dict")]:
        assert stream.feed(event, data) == []


def test_close_ends_a_stream_cut_before_message_delta_once() -> None:
    stream = AnthropicToChatStream(MODEL, ID, CREATED, True)
    stream.feed("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "x"}})
    closing = stream.close()
    assert [c["choices"][0]["finish_reason"] if c["choices"] else "usage" for c in closing] == [
        "stop", "usage"]
    assert stream.close() == [] and not stream.stopped


text_block = st.builds(lambda t: {"type": "text", "text": t}, st.text(min_size=1))
thinking_block = st.builds(lambda t, s: {"type": "thinking", "thinking": t, "signature": s},
                           st.text(), st.text(min_size=1))
tool_block = st.builds(
    lambda i, n, value: {"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": value},
    st.integers(0, 10**6), st.sampled_from(["a", "b", "json_output"]),
    st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=6), max_size=4))


def events_for(content: list[dict], stop: str, cuts: st.DataObject) -> list[tuple[str, dict]]:
    """The stream Anthropic would send for ``content``, each text cut at drawn points (tool
    input compact, as the non-streaming side prints it, so contents compare exactly)."""
    def pieces(text: str) -> list[str]:
        points = sorted(cuts.draw(st.lists(st.integers(0, len(text)), max_size=3)))
        return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    out = [("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "content": [], "usage": {"input_tokens": 7, "output_tokens": 1}}})]
    for index, block in enumerate(content):
        kind = block["type"]
        start = {**block, "text": ""} if kind == "text" else {
            **block, "thinking": "", "signature": ""} if kind == "thinking" else {
            **block, "input": {}}
        out.append(("content_block_start", {"index": index, "content_block": start}))
        field, delta, value = {"text": ("text", "text_delta", block.get("text")),
                               "thinking": ("thinking", "thinking_delta", block.get("thinking")),
                               "tool_use": ("partial_json", "input_json_delta",
                                            encode(block.get("input")).decode())}[kind]
        out += [("content_block_delta", {"index": index, "delta": {"type": delta, field: p}})
                for p in pieces(value)]
        if kind == "thinking":
            out.append(("content_block_delta", {"index": index, "delta": {
                "type": "signature_delta", "signature": block["signature"]}}))
        out.append(("content_block_stop", {"index": index}))
    out.append(("message_delta", {"delta": {"stop_reason": stop}, "usage": {"output_tokens": 9}}))
    return [*out, ("message_stop", {})]


@settings(max_examples=60, deadline=None)
@given(st.lists(thinking_block, max_size=2), st.lists(text_block | tool_block, max_size=5),
       st.sampled_from(["end_turn", "tool_use", "max_tokens"]), st.booleans(), st.data())
def test_stream_agrees_with_the_non_streaming_translation(thoughts, blocks, stop, forced, cuts):
    content = thoughts + blocks
    forced_tool = "json_output" if forced else None
    stream = AnthropicToChatStream(MODEL, ID, CREATED, True, forced_tool)
    chunks = [c for name, data in events_for(content, stop, cuts) for c in stream.feed(name, data)]
    chunks += stream.close()
    streamed = accumulate(b"".join(map(sse_data, chunks)) + b"data: [DONE]\n\n").model_dump()
    whole = response({"content": content, "stop_reason": stop,
                      "usage": {"input_tokens": 7, "output_tokens": 9}},
                     MODEL, ID, CREATED, forced_tool)
    message, got = whole["choices"][0]["message"], streamed["choices"][0]["message"]
    assert streamed["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert streamed["usage"]["total_tokens"] == whole["usage"]["total_tokens"] == 16
    assert (got["content"] or None) == (message["content"] or None)
    calls = [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
             for c in got["tool_calls"] or []]
    assert calls == [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                     for c in message.get("tool_calls", [])]
    details = [d for c in chunks if c["choices"]
               for d in c["choices"][0]["delta"].get("reasoning_details", [])]
    assert details == message.get("reasoning_details", [])
