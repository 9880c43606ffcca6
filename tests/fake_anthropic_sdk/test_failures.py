"""Proves FakeAnthropic's refusals and scripted failures match the real Messages API's."""

from __future__ import annotations

import time

import anthropic
import httpx2
import pytest
from fakes.anthropic_upstream import Behaviour, FakeAnthropic

from fake_anthropic_sdk.support import raw_post

MODEL = "claude-sonnet-4-5-20250929"
USER = [{"role": "user", "content": "hello there world"}]
PNG = "iVBORw0KGgo="



@pytest.mark.parametrize(("change", "message"), [
    ({"max_tokens": None}, "max_tokens: Field required"),
    ({"temperature": 1.5}, "temperature"),
    ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
    ({"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 1500},
     "`max_tokens` must be greater than `thinking.budget_tokens`"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, 'first message must use the "user"'),
    ({"messages": [*USER, *USER]}, "roles must alternate"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/bmp",
                                     "data": PNG}}]}]}, "media_type"),
])
def test_invalid_requests_get_the_real_400(fake: FakeAnthropic, change: dict[str, object],
                                           message: str) -> None:
    body = {"model": MODEL, "max_tokens": 100, "messages": USER, **change}
    response = raw_post(fake, {k: v for k, v in body.items() if v is not None})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]
    assert error["request_id"] == response.headers["request-id"]


def test_headers_are_checked(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": USER}
    missing = raw_post(fake, body, **{"x-api-key": ""})
    assert missing.status_code == 401
    assert missing.json()["error"] == {"type": "authentication_error",
                                       "message": "x-api-key header is required"}
    assert raw_post(fake, body, **{"anthropic-version": ""}).status_code == 400
    assert raw_post(fake, body).status_code == 200
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.with_options(api_key="sk-ant-wrong").messages.create(
            model=MODEL, max_tokens=10, messages=USER)
    assert caught.value.type == "authentication_error"
    assert caught.value.request_id.startswith("req_")


@pytest.mark.parametrize(("status", "error", "kind"), [
    (400, anthropic.BadRequestError, "invalid_request_error"),
    (403, anthropic.PermissionDeniedError, "permission_error"),
    (404, anthropic.NotFoundError, "not_found_error"),
    (413, anthropic.ContentTooLargeError, "request_too_large"),
    (429, anthropic.RateLimitError, "rate_limit_error"),
    (500, anthropic.InternalServerError, "api_error"),
    (529, anthropic.OverloadedError, "overloaded_error"),
])
def test_error_statuses_become_sdk_exceptions(fake: FakeAnthropic, client: anthropic.Anthropic,
                                              status: int, error: type[Exception],
                                              kind: str) -> None:
    fake.script(Behaviour(status=status, error_message="scripted"))
    with pytest.raises(error) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert (caught.value.status_code, caught.value.type) == (status, kind)
    assert caught.value.api_message == "scripted"
    headers = caught.value.response.headers
    assert headers.get("retry-after") == ("0" if status == 429 else None)


def test_retry_after_is_scripted(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.script(Behaviour(status=529, retry_after=3))
    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert caught.value.response.headers["retry-after"] == "3"


def test_mid_stream_error_event_and_drop(fake: FakeAnthropic,
                                         client: anthropic.Anthropic) -> None:
    fake.script(Behaviour(text="a b c d", error_event_after=4),
                Behaviour(text="a b c d", fail_mid_stream_after=4))
    seen: list[str] = []
    # The error event arrives on a 200 stream, so it is the base APIStatusError.
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(model=MODEL, max_tokens=10, messages=USER) as stream:
            seen.extend(e.type for e in stream if e.type != "text")
    assert caught.value.type == "overloaded_error"
    assert seen == ["message_start", "content_block_start", "content_block_delta"]
    seen.clear()
    # This SDK lets the transport's error through unwrapped when a stream breaks.
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
        with client.messages.stream(model=MODEL, max_tokens=10, messages=USER) as stream:
            seen.extend(e.type for e in stream if e.type != "text")
    assert seen == ["message_start", "content_block_start", "content_block_delta"]
    assert fake.cancellations == []


def test_client_closing_a_stream_is_a_cancellation(fake: FakeAnthropic,
                                                   client: anthropic.Anthropic) -> None:
    fake.script(Behaviour(text=" ".join(["word"] * 500), chunk_interval=0.01))
    stream = client.messages.create(model=MODEL, max_tokens=1000, messages=USER, stream=True)
    iterator = iter(stream)
    for _ in range(6):
        next(iterator)
    stream.close()
    closed_at = time.monotonic()
    [cancellation] = fake.wait_for_cancellations(timeout=1.0)
    assert cancellation.at - closed_at < 1.0
    assert 6 <= cancellation.events_sent < 500
    assert cancellation.output_tokens_sent == cancellation.events_sent - 3
