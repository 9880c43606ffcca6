"""SseRelay: usage forced upstream for billing is tapped, and hidden from a client that did
not ask for it; one decode per event."""

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

import application.sse_relay as sse_relay
from application.sse_relay import SseRelay
from domain.pricing import TokenUsage

_encode = msgspec.json.encode
USAGE = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}


def _chunk(content=None, finish=None, usage=None, choices=True, **extra):
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "native-x", **extra}
    body["choices"] = ([{"index": 0, "delta": {"content": content} if content else {},
                         "finish_reason": finish}] if choices else [])
    if usage is not None:
        body["usage"] = None if usage == "null" else usage
    return body


def _stream(*chunks) -> bytes:
    return b"".join(b"data: " + _encode(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


# What OpenAI sends with include_usage: usage null on every chunk, then a usage-only chunk.
WITH_USAGE = _stream(_chunk("He", usage="null"), _chunk("llo", usage="null"),
                     _chunk(finish="stop", usage="null"),
                     _chunk(choices=False, usage=USAGE))


def _events(out: bytes) -> list:
    events = []
    for event in out.split(b"\n\n"):
        if event:
            payload = event.removeprefix(b"data: ")
            events.append(payload if payload == b"[DONE]" else msgspec.json.decode(payload))
    return events


def test_stripping_taps_the_usage_chunk_and_hides_usage_from_the_client():
    relay = SseRelay("client/model", strip_usage=True)
    events = _events(relay.feed(WITH_USAGE) + relay.flush())
    assert relay.usage == TokenUsage(prompt_tokens=7, completion_tokens=2)
    assert relay.output_text == "Hello" and relay.done and relay.finish_reason == "stop"
    assert events[-1] == b"[DONE]" and len(events) == 4
    for chunk in events[:-1]:
        assert "usage" not in chunk and chunk["model"] == "client/model" and chunk["choices"]


def test_without_stripping_the_stream_is_relayed_as_before():
    relay = SseRelay("client/model")
    events = _events(relay.feed(WITH_USAGE))
    assert len(events) == 5
    assert [e.get("usage", "absent") for e in events[:-1]] == [None, None, None, USAGE]
    assert relay.usage == TokenUsage(prompt_tokens=7, completion_tokens=2)
    assert events[3]["model"] == "client/model"


def test_usage_on_a_chunk_with_choices_is_billed_and_removed():
    relay = SseRelay("m", strip_usage=True)
    events = _events(relay.feed(_stream(_chunk("hi", finish="stop", usage=USAGE))))
    assert relay.usage.completion_tokens == 2
    assert events[0]["choices"][0]["delta"] == {"content": "hi"} and "usage" not in events[0]


def test_an_error_chunk_is_never_dropped():
    relay = SseRelay("m", strip_usage=True)
    error = {"error": {"message": "boom"}, "choices": [], "usage": USAGE}
    events = _events(relay.feed(b"data: " + _encode(error) + b"\n\n"))
    assert relay.error and events == [{"error": {"message": "boom"}, "choices": []}]


def test_a_chunk_without_usage_key_or_model_is_forwarded_byte_for_byte():
    raw = b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n: keep-alive\n\ndata: [DONE]\n\n'
    assert SseRelay("m", strip_usage=True).feed(raw) == raw


def test_an_unterminated_final_usage_chunk_is_billed_and_not_forwarded_when_stripping():
    tail = b"data: " + _encode(_chunk(choices=False, usage=USAGE)) + b"\n"
    relay = SseRelay("m", strip_usage=True)
    assert relay.feed(_stream(_chunk("a")) + tail).endswith(b"data: [DONE]\n\n")
    assert relay.flush() == b""
    assert relay.usage.prompt_tokens == 7
    assert SseRelay("m").flush() == b""
    kept = SseRelay("m")
    kept.feed(tail)
    assert kept.flush() == tail  # unchanged when not stripping


def test_one_decode_per_event(monkeypatch):
    calls = []

    def counting(payload):
        calls.append(payload)
        return msgspec.json.decode(payload)

    monkeypatch.setattr(sse_relay, "_decode", counting)
    relay = SseRelay("m", strip_usage=True)
    relay.feed(WITH_USAGE)
    assert len(calls) == 4  # four JSON events; [DONE] is not decoded


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, len(WITH_USAGE)), max_size=12), strip=st.booleans())
def test_output_does_not_depend_on_how_the_bytes_arrive(cuts, strip):
    whole = SseRelay("m", strip_usage=strip)
    expected = whole.feed(WITH_USAGE) + whole.flush()
    relay = SseRelay("m", strip_usage=strip)
    bounds = [0, *sorted(cuts), len(WITH_USAGE)]
    out = b"".join(relay.feed(WITH_USAGE[a:b]) for a, b in zip(bounds, bounds[1:], strict=False))
    assert out + relay.flush() == expected
    assert relay.usage == whole.usage and relay.output_text == whole.output_text


def test_parameter_names_in_a_header_are_percent_encoded_and_bounded():
    from application.relay import MAX_PARAM_HEADER, param_list

    assert param_list(["foo", "presence_penalty"]) == "foo, presence_penalty"
    assert param_list(["a\r\nb", "\u0100", "x,y", "50%"]) == "a%0D%0Ab, %C4%80, x%2Cy, 50%25"
    long = param_list([f"field_{i}" for i in range(20_000)])
    assert len(long) <= MAX_PARAM_HEADER and long.endswith(", ...")
    long.encode("latin-1")
