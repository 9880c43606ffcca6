"""OpenAI chat stream -> Anthropic events: golden files byte for byte (9.7), the official
SDK's stream machinery over every output, and the block invariants of 9.11."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import httpx2
import pytest
from anthropic.lib.streaming import MessageStream
from anthropic.types import RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from application.translate.anthropic_openai.stream import ChatToAnthropicStream
from application.translate.common import sse_event
from application.translate.sse import SseParser

GOLDEN = Path(__file__).parents[2] / "golden" / "anthropic_openai"
CASES = sorted(p.name.removesuffix(".openai.sse") for p in GOLDEN.glob("*.openai.sse"))
EVENT = TypeAdapter(RawMessageStreamEvent)


def translate(raw: bytes, read: int = 4096) -> bytes:
    """The gateway's relay loop in miniature: parse upstream SSE in reads of ``read`` bytes,
    translate each chunk, close at [DONE], frame each event."""
    stream = ChatToAnthropicStream("gpt-test", "msg_01TestGolden")
    parser = SseParser()
    out = []
    for start in range(0, len(raw), read):
        for event in parser.feed(raw[start:start + read]):
            pairs = stream.close() if event.data == "[DONE]" else stream.feed(json.loads(event.data))
            out += [sse_event(name, payload) for name, payload in pairs]
    return b"".join(out)


def sdk_final(body: bytes):
    """Run bytes through the official SDK: the raw event stream, then the accumulator."""
    client = anthropic.Anthropic(api_key="x", base_url="http://x")
    def response() -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    raw = list(anthropic.Stream(cast_to=RawMessageStreamEvent, response=response(), client=client))
    stream = MessageStream(
        anthropic.Stream(cast_to=RawMessageStreamEvent, response=response(), client=client),
        output_format=anthropic.not_given)
    return raw, stream.get_final_message()


def events(pairs: list) -> list[dict]:
    for name, payload in pairs:
        assert payload["type"] == name
        EVENT.validate_python(payload)  # strict: the SDK's own models accept every payload
    return [payload for _, payload in pairs]


def test_there_are_golden_cases() -> None:
    assert {"text", "parallel_tools", "reasoning_text", "length", "cached_usage"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden_byte_for_byte(case: str) -> None:
    raw = (GOLDEN / f"{case}.openai.sse").read_bytes()
    expected = (GOLDEN / f"{case}.anthropic.sse").read_bytes()
    assert translate(raw) == expected
    # Read boundaries never change the output (events and UTF-8 characters split across reads).
    assert translate(raw, read=7) == expected


@pytest.mark.parametrize("case", CASES)
def test_sdk_iterates_and_accumulates(case: str) -> None:
    raw, message = sdk_final((GOLDEN / f"{case}.anthropic.sse").read_bytes())
    assert raw[0].type == "message_start" and raw[-1].type == "message_stop"
    assert message.id == "msg_01TestGolden" and message.stop_reason is not None


def test_golden_final_messages() -> None:
    def final(case):
        return sdk_final((GOLDEN / f"{case}.anthropic.sse").read_bytes())[1]
    text = final("text")
    assert [b.type for b in text.content] == ["text"]
    assert text.content[0].text == "Hello! How can I help you today? ☕"
    assert (text.stop_reason, text.usage.input_tokens, text.usage.output_tokens) == \
        ("end_turn", 19, 10)
    tools = final("parallel_tools")
    assert [(b.type, b.id, b.input) for b in tools.content] == [
        ("tool_use", "call_8mRq2Lw0cH1sJ3xTt9vB4nKa", {"city": "Paris", "unit": "c"}),
        ("tool_use", "call_Fz5yA0dP7gS2hU8kQ1wE6rTi", {"city": "Tōkyō", "unit": "c"})]
    assert tools.stop_reason == "tool_use"
    reasoning = final("reasoning_text")
    assert [b.type for b in reasoning.content] == ["thinking", "text"]
    assert reasoning.content[0].thinking.startswith("The user asks")
    assert reasoning.content[1].text == "9.9 is larger than 9.11."
    assert final("length").stop_reason == "max_tokens"
    cached = final("cached_usage").usage
    assert (cached.input_tokens, cached.cache_read_input_tokens,
            cached.cache_creation_input_tokens) == (86, 1920, 0)
    signed = final("openrouter_signature")
    assert [b.type for b in signed.content] == ["thinking", "text", "tool_use"]
    assert signed.content[0].thinking == "I should check the weather."
    assert signed.content[0].signature == "EqQBCkYIBxgCKkB0c2lnbmF0dXJlLWJ5dGVz"
    assert signed.content[2].input == {"city": "Oslo"}


def chunk(delta: dict | None = None, finish: str | None = None, **extra) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c", "object": "chat.completion.chunk", "choices": choices, **extra}


def run(chunks: list[dict]) -> list[dict]:
    stream = ChatToAnthropicStream("m", "msg_1")
    pairs = [pair for c in chunks for pair in stream.feed(c)] + stream.close()
    assert stream.close() == [] and stream.feed(chunk({"content": "late"})) == []
    return events(pairs)


def test_close_without_chunks_is_still_a_whole_message() -> None:
    out = run([])
    assert [e["type"] for e in out] == ["message_start", "message_delta", "message_stop"]
    assert out[1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert out[1]["usage"] == {"output_tokens": 0}


def test_refusal_and_redacted_reasoning() -> None:
    out = run([chunk({"role": "assistant", "reasoning_details": [
                   {"type": "reasoning.encrypted", "data": "b64==", "format": "x", "index": 0}]}),
               chunk({"refusal": "I can't help with that."}, "stop")])
    starts = [e["content_block"] for e in out if e["type"] == "content_block_start"]
    assert starts == [{"type": "redacted_thinking", "data": "b64=="}, {"type": "text", "text": ""}]
    assert out[-2]["delta"]["stop_reason"] == "refusal"


def test_tool_calls_without_index_and_stop_finish() -> None:
    # Some hosts send whole calls without `index` and end with "stop".
    out = run([chunk({"tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": '{"x":1}'}}]},
        "stop")])
    starts = [(e["index"], e["content_block"]["id"]) for e in out
              if e["type"] == "content_block_start"]
    assert starts == [(0, "a"), (1, "b")]
    assert out[-2]["delta"]["stop_reason"] == "tool_use"


def test_usage_chunk_after_finish_reaches_message_delta() -> None:
    out = run([chunk({"content": "x"}, "length"),
               chunk(usage={"prompt_tokens": 50, "completion_tokens": 7,
                            "prompt_tokens_details": {"cached_tokens": 20}})])
    assert out[-2]["usage"] == {"input_tokens": 30, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 20, "output_tokens": 7}
    assert out[-2]["delta"]["stop_reason"] == "max_tokens"


# A plan is a list of output segments, each fragmented as an upstream would stream it.
_piece = st.text(min_size=1, max_size=12)
_segment = st.one_of(
    st.tuples(st.just("text"), st.lists(_piece, min_size=1, max_size=4)),
    st.tuples(st.just("thinking"), st.lists(_piece, min_size=1, max_size=4)),
    st.tuples(st.just("tool"), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
              st.integers(min_value=1, max_value=5)))


@settings(max_examples=60, deadline=None)
@given(st.lists(_segment, max_size=6))
def test_blocks_keep_order_ids_and_complete_content(plan: list) -> None:
    chunks, expected, tool_index = [chunk({"role": "assistant", "content": ""})], [], 0
    for seg in plan:
        if seg[0] == "tool":
            call_id, args = f"call_{tool_index}", json.dumps(seg[1])
            cut = [args[i:i + seg[2]] for i in range(0, len(args), seg[2])]
            chunks.append(chunk({"tool_calls": [{"index": tool_index, "id": call_id,
                                 "type": "function", "function": {"name": "f", "arguments": ""}}]}))
            chunks += [chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": p}}]})
                       for p in cut]
            expected.append(("tool_use", call_id, seg[1]))
            tool_index += 1
        else:
            key = "content" if seg[0] == "text" else "reasoning_content"
            chunks += [chunk({key: p}) for p in seg[1]]
            if expected and expected[-1][0] == seg[0]:
                expected[-1] = (seg[0], expected[-1][1] + "".join(seg[1]))
            else:
                expected.append((seg[0], "".join(seg[1])))
    chunks += [chunk({}, "tool_calls" if tool_index else "stop"), chunk(usage={})]
    out = run(chunks)
    open_index, starts = None, 0
    for e in out[1:-2]:  # between message_start and message_delta
        if e["type"] == "content_block_start":
            assert open_index is None and e["index"] == starts
            open_index, starts = e["index"], starts + 1
        elif e["type"] == "content_block_delta":
            assert e["index"] == open_index
        else:
            assert e["type"] == "content_block_stop" and e["index"] == open_index
            open_index = None
    assert open_index is None and starts == len(expected)
    body = b"".join(sse_event(e["type"], e) for e in out)
    message = sdk_final(body)[1]
    got = [("tool_use", b.id, b.input) if b.type == "tool_use" else
           (b.type, b.text if b.type == "text" else b.thinking) for b in message.content]
    assert got == expected
