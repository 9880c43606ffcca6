"""What a stream costs (spec 6.4, 6.5, 9.7): a client that leaves mid-stream pays for what was
generated and the upstream is cancelled within 1 s; provider failures, empty streams and
mid-stream drops cost nothing and end with exactly one HoldVoided."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest
from fakes.openai_upstream import Behaviour

from e2e.support import (
    MODEL,
    account_requests,
    assert_error,
    balance,
    chat_body,
    customer,
    post_chat,
    post_stream_until_cut,
    request_events,
    request_record,
    sdk,
)

MESSAGES = [{"role": "user", "content": "one two three"}]
CREDIT = 1_000_000
LONG = " ".join(f"w{i:03d}" for i in range(300))


def _tokens(text: str) -> int:
    """The gateway's fallback count: 1 token per 4 characters, rounded up (6.5)."""
    return -(-len(text) // 4)


def _assert_nothing_charged(served, key: str, request_id: str, reason: str) -> dict:
    record = request_record(served, request_id)
    assert record["status"] == "voided", record
    assert record["void_reason"] == reason, record
    assert record["charged_micros"] == 0
    assert request_events(served, request_id) == ["HoldPlaced", "HoldVoided"]
    view = balance(served, key)
    assert view["balance_micros"] == CREDIT
    assert view["open_holds"] == 0
    return record


def test_a_client_leaving_mid_stream_cancels_upstream_within_a_second_and_pays_for_output(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.default = Behaviour(content=LONG, chunk_interval=0.01)
    stream = sdk(priced, who.key).chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True)
    request_id = stream.response.headers["x-request-id"]

    received = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received.append(chunk.choices[0].delta.content)
        if len(received) == 20:
            break
    stream.close()
    closed_at = time.monotonic()

    cancellation = fake_openai.wait_for_cancellations(1, timeout=2.0)[0]
    assert cancellation.at - closed_at <= 1.0
    assert 20 <= cancellation.chunks_sent < 300
    record = request_record(priced, request_id)
    assert record["status"] == "settled"
    assert record["client_disconnected"] is True
    assert 0 < record["charged_micros"] <= record["hold_micros"]
    assert record["token_source"] == "estimated"
    # Input plus the output generated so far: at least what the client saw, at most what the
    # provider sent, each counted at 1 token per 4 characters.
    prompt_cost = _tokens("one two three") * 1
    seen = "".join(received)
    sent = " ".join(LONG.split()[:cancellation.chunks_sent])
    assert prompt_cost + _tokens(seen) * 2 <= record["charged_micros"]
    assert record["charged_micros"] <= prompt_cost + (_tokens(sent) + 1) * 2
    assert request_events(priced, request_id) == ["HoldPlaced", "HoldSettled"]
    view = balance(priced, who.key)
    assert view["balance_micros"] == CREDIT - record["charged_micros"]
    assert view["open_holds"] == 0


def test_an_async_client_leaving_mid_stream_is_charged_and_the_upstream_cancelled(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.default = Behaviour(content=LONG, chunk_interval=0.01)

    async def run() -> str:
        async with openai.AsyncOpenAI(base_url=priced.url + "/v1", api_key=who.key,
                                      max_retries=0) as client:
            stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                          stream=True)
            count = 0
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    count += 1
                if count == 20:
                    break
            await stream.close()
            return stream.response.headers["x-request-id"]

    request_id = asyncio.run(run())

    fake_openai.wait_for_cancellations(1, timeout=1.5)
    record = request_record(priced, request_id)
    assert record["status"] == "settled" and record["client_disconnected"] is True
    assert 0 < record["charged_micros"] <= record["hold_micros"]


def test_a_stream_the_provider_refuses_with_500_costs_nothing(priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.script(*[Behaviour(status=500)] * 3)  # a sole provider is tried 3 times

    response = post_chat(priced, who.key, chat_body(stream=True))

    error = assert_error(response, 502, "provider_error")
    _assert_nothing_charged(priced, who.key, error["request_id"], "provider_error")


def test_an_empty_stream_costs_nothing_and_is_voided_as_empty(priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.script(Behaviour(empty_stream=True))

    stream = sdk(priced, who.key).chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True)
    chunks = list(stream)

    assert chunks == []
    _assert_nothing_charged(priced, who.key, stream.response.headers["x-request-id"],
                            "empty_stream")


def test_a_stream_the_provider_drops_midway_costs_nothing_and_ends_with_an_error_event(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.script(Behaviour(content=LONG, fail_mid_stream_after=3))

    response, raw, cut = post_stream_until_cut(priced, who.key, chat_body(stream=True))
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]

    assert cut  # as the provider cut its stream, so the gateway cuts the client's
    events = [block.strip().removeprefix("data: ") for block in raw.decode().split("\n\n")
              if block.strip()]
    assert "[DONE]" not in events
    chunks = [json.loads(e) for e in events]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[:-1]]
    assert contents == ["", "w000", " w001", " w002"]
    # 9.7: an error after the stream has started is sent as a data event, then the stream
    # closes without [DONE].
    assert set(chunks[-1]) == {"error"}
    assert chunks[-1]["error"]["code"] == "provider_error"
    assert chunks[-1]["error"]["request_id"] == request_id
    assert len(fake_openai.chat_requests()) == 1
    _assert_nothing_charged(priced, who.key, request_id, "provider_error")


def test_the_sdk_raises_a_connection_error_when_the_provider_drops_the_stream(priced,
                                                                              fake_openai):
    """As it would calling the provider directly: the SDK reports a connection failure."""
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.script(Behaviour(content=LONG, fail_mid_stream_after=3))
    stream = sdk(priced, who.key).chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True)

    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)

    assert received == ["", "w000", " w001", " w002"]
    _assert_nothing_charged(priced, who.key, stream.response.headers["x-request-id"],
                            "provider_error")


def test_a_complete_stream_is_charged_exactly_once_even_when_read_slowly(priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.default = Behaviour(content="alpha beta gamma delta")
    stream = sdk(priced, who.key).chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True})

    usage = None
    for chunk in stream:
        time.sleep(0.01)
        usage = chunk.usage or usage

    record = request_record(priced, stream.response.headers["x-request-id"])
    assert record["status"] == "settled" and record["client_disconnected"] is False
    assert record["charged_micros"] == usage.prompt_tokens * 1 + usage.completion_tokens * 2
    assert record["finish_reason"] == "stop"
    assert balance(priced, who.key)["balance_micros"] == CREDIT - record["charged_micros"]


def test_a_non_streaming_client_that_leaves_before_the_answer_is_charged_nothing(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.script(Behaviour(delay_before_headers=1.0))

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(priced.url + "/v1/chat/completions", json=chat_body(),
                   headers={"Authorization": f"Bearer {who.key}"}, timeout=0.3)

    fake_openai.wait_for_requests(1)
    deadline = time.monotonic() + 3
    rows: list = []
    while time.monotonic() < deadline:
        rows = [r for r, status in account_requests(priced, who.account_id)
                if status != "open"]
        if rows:
            break
        time.sleep(0.05)
    assert len(rows) == 1, rows
    record = request_record(priced, rows[0])
    assert record["status"] == "voided"
    assert record["void_reason"] == "cancelled_before_output"
    assert balance(priced, who.key)["balance_micros"] == CREDIT

