"""Proves FakeOpenAI's scripted failures (errors, drops, delays, cancellations) in the SDK."""

from __future__ import annotations

import time

import openai
import pytest
from fakes.openai_upstream import Behaviour, FakeOpenAI

USER = [{"role": "user", "content": "hello there world"}]




def test_server_error_behaviour_raises_internal_server_error(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.script(Behaviour(status=500))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"


def test_rate_limit_behaviour_raises_rate_limit_error(fake: FakeOpenAI,
                                                      client: openai.OpenAI) -> None:
    fake.script(Behaviour(status=429))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert caught.value.code == "rate_limit_exceeded"


def test_mid_stream_drop_raises_in_the_sdk(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.script(Behaviour(content="a b c d e f", fail_mid_stream_after=2))
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="m", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "a", " b"]
    # Our own drop is not the client going away.
    assert fake.cancellations == []


def test_client_closing_a_stream_early_is_recorded_as_a_cancellation(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.script(Behaviour(content=" ".join(["word"] * 500), chunk_interval=0.01))
    stream = client.chat.completions.create(model="m", messages=USER, stream=True)
    iterator = iter(stream)
    for _ in range(3):
        next(iterator)
    stream.close()
    closed_at = time.monotonic()

    [cancellation] = fake.wait_for_cancellations(timeout=1.0)
    assert cancellation.at - closed_at < 1.0
    assert cancellation.request_index == 0
    assert 2 <= cancellation.chunks_sent < 500
    assert cancellation.completion_tokens_sent == cancellation.chunks_sent


def test_empty_stream_yields_no_chunks(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.script(Behaviour(empty_stream=True))
    assert list(client.chat.completions.create(model="m", messages=USER, stream=True)) == []


def test_close_connection_is_a_connection_error(fake: FakeOpenAI,
                                                client: openai.OpenAI) -> None:
    fake.script(Behaviour(close_connection=True))
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=USER)
    assert len(fake.requests) == 1


def test_delay_before_headers_trips_the_client_timeout(fake: FakeOpenAI,
                                                       client: openai.OpenAI) -> None:
    fake.script(Behaviour(delay_before_headers=2.0))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.2).chat.completions.create(model="m", messages=USER)
    assert time.monotonic() - started < 1.5


def test_a_stream_whose_client_times_out_before_headers_is_a_cancellation(
    fake: FakeOpenAI, client: openai.OpenAI
) -> None:
    fake.script(Behaviour(delay_before_headers=2.0))
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.2).chat.completions.create(
            model="m", messages=USER, stream=True)
    [cancellation] = fake.wait_for_cancellations(timeout=1.0)
    assert (cancellation.chunks_sent, cancellation.completion_tokens_sent) == (0, 0)


def test_error_body_and_retry_after_can_be_scripted(fake: FakeOpenAI,
                                                    client: openai.OpenAI) -> None:
    fake.script(
        Behaviour(status=400, error_code="context_length_exceeded", error_param="messages",
                  error_message="This model's maximum context length is 8 tokens."),
        Behaviour(status=429, retry_after=7),
    )
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="m", messages=USER)
    assert (bad.value.code, bad.value.param) == ("context_length_exceeded", "messages")
    assert bad.value.body["message"] == "This model's maximum context length is 8 tokens."
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="m", messages=USER)
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.code == "rate_limit_exceeded"
