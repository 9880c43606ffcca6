"""The inference use case with streamed answers (6.4, 6.5, 9.7), against the fake provider
port: usage reported or estimated, the usage chunk asked for upstream and stripped when the
client did not ask, broken and empty streams, failover before the first byte."""

from __future__ import annotations

import pytest
from fakes.provider_port import status_answer, stream_answer

from application.relay import StreamCut
from service.support import (
    CREDIT,
    DUO,
    SOLO,
    assert_voided_free,
    available,
    chat,
    consume,
    content_of,
    cost,
    customer,
    estimated_tokens,
    new_request_id,
    settle_all,
    sse_events,
    terminal,
)


# -- streams ------------------------------------------------------------------------------------
def test_a_complete_stream_with_usage_is_charged_the_reported_usage(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(stream_answer(["Hel", "lo", " you"], usage=(30, 3)))
    request_id = new_request_id()

    response = loop.run_until_complete(
        gw.inference.chat(request_id, chat(SOLO, stream=True), principal))
    raw = loop.run_until_complete(consume(response.stream))

    events = sse_events(raw)
    assert events[-1] == "[DONE]"
    assert content_of(events) == "Hello you"
    assert {e["model"] for e in events if isinstance(e, dict)} == {SOLO}
    settle_all(gw)
    _, end = terminal(gw, request_id)
    assert end.type == "InferenceRequest.HoldSettled"
    assert (end.data["token_source"], end.data["charged_micros"],
            end.data["client_disconnected"]) == ("provider", cost("alpha", 30, 3), False)
    assert available(gw, account_id) == CREDIT - cost("alpha", 30, 3)
    assert port.closed == 1


def test_a_complete_stream_without_usage_is_charged_on_the_estimate(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    request = chat(SOLO, content="eight ch", stream=True, include_usage=False)
    port.will(stream_answer(["abcde", "fghij"], usage=None))
    request_id = new_request_id()

    response = loop.run_until_complete(gw.inference.chat(request_id, request, principal))
    loop.run_until_complete(consume(response.stream))

    settle_all(gw)
    _, end = terminal(gw, request_id)
    expected = cost("alpha", estimated_tokens("eight ch"), estimated_tokens("abcdefghij"))
    assert (end.data["token_source"], end.data["charged_micros"]) == ("estimated", expected)
    assert available(gw, account_id) == CREDIT - expected


def test_a_stream_always_asks_upstream_for_usage_and_strips_it_when_the_client_did_not(
        gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    request = chat(SOLO, stream=True, include_usage=False)
    port.will(stream_answer(["a", "b"], usage=(7, 2)))
    request_id = new_request_id()

    response = loop.run_until_complete(gw.inference.chat(request_id, request, principal))
    events = sse_events(loop.run_until_complete(consume(response.stream)))

    assert port.received[0].body["stream_options"] == {"include_usage": True}
    assert not any(isinstance(e, dict) and e.get("usage") for e in events)
    assert events[-1] == "[DONE]"
    settle_all(gw)
    _, end = terminal(gw, request_id)
    assert (end.data["token_source"], end.data["charged_micros"]) == \
        ("provider", cost("alpha", 7, 2))
    assert available(gw, account_id) == CREDIT - cost("alpha", 7, 2)


def test_a_stream_broken_midway_ends_with_an_error_event_and_voids_the_hold(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(stream_answer(["one", "two", "three", "four"], break_after=3))
    request_id = new_request_id()

    response = loop.run_until_complete(
        gw.inference.chat(request_id, chat(SOLO, stream=True), principal))
    received: list[bytes] = []

    async def read_until_cut() -> None:
        async for data in response.stream:
            received.append(data)

    # The error event goes out without its blank line, then the stream is cut as the
    # provider's was, so an SDK reports a connection failure (as from the provider itself).
    with pytest.raises(StreamCut) as cut:
        loop.run_until_complete(read_until_cut())

    assert cut.value.charged is False
    raw = b"".join(received)
    assert raw.endswith(b"}\n") and not raw.endswith(b"\n\n")
    events = sse_events(raw + b"\n")
    assert "[DONE]" not in events
    assert events[-1]["error"]["code"] == "provider_error"
    assert content_of(events) == "onetwo"
    assert_voided_free(gw, account_id, request_id, "provider_error")
    assert port.closed == 1


def test_an_empty_stream_is_voided_as_empty(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(stream_answer([], usage=None))
    request_id = new_request_id()

    response = loop.run_until_complete(
        gw.inference.chat(request_id, chat(SOLO, stream=True), principal))
    loop.run_until_complete(consume(response.stream))

    assert_voided_free(gw, account_id, request_id, "empty_stream")


def test_a_stream_fails_over_before_its_first_byte(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(status_answer(502), provider="alpha")
    port.will(stream_answer(["x"], usage=(4, 1)), provider="beta")
    request_id = new_request_id()

    response = loop.run_until_complete(
        gw.inference.chat(request_id, chat(DUO, stream=True), principal))
    loop.run_until_complete(consume(response.stream))

    settle_all(gw)
    _, end = terminal(gw, request_id)
    assert (end.data["provider"], end.data["charged_micros"]) == ("beta", cost("beta", 4, 1))
    assert available(gw, account_id) == CREDIT - cost("beta", 4, 1)
