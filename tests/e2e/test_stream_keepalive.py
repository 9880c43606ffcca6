"""An idle stream keeps the client's connection alive (9.7): a comment in OpenAI formats, a
``ping`` event for Anthropic clients, and both SDKs read through them."""

from __future__ import annotations

import httpx
import pytest
from fakes.openai_upstream import Behaviour

from e2e.anthropic_support import anthropic_sdk
from e2e.support import MODEL, customer, price_model, sdk


@pytest.fixture
def slow(served, fake_openai):
    price_model(served, fake_openai)
    served.gateway.http_client.keep_alive_s = 0.1  # 15 s in production
    fake_openai.default = Behaviour(content="one two three", chunk_interval=0.35)
    return served


def test_an_openai_stream_gets_keep_alive_comments_while_the_provider_is_quiet(slow):
    who = customer(slow)

    with slow.http.stream("POST", "/v1/chat/completions",
                          headers={"Authorization": f"Bearer {who.key}"},
                          json={"model": MODEL, "stream": True,
                                "messages": [{"role": "user", "content": "hi"}]}) as response:
        raw = b"".join(response.iter_raw())

    assert b": keep-alive\n\n" in raw
    assert raw.rstrip().endswith(b"data: [DONE]")


def test_both_sdks_read_through_keep_alives(slow):
    who = customer(slow)

    chunks = list(sdk(slow, who.key).chat.completions.create(
        model=MODEL, stream=True, messages=[{"role": "user", "content": "hi"}]))
    with anthropic_sdk(slow, who.key).messages.stream(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_message()

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "one two three"
    assert final.content[0].text == "one two three"


def test_an_anthropic_client_gets_ping_events(slow):
    who = customer(slow)

    with httpx.stream("POST", f"{slow.url}/v1/messages",
                      headers={"x-api-key": who.key},
                      json={"model": MODEL, "max_tokens": 50, "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}) as response:
        raw = b"".join(response.iter_raw())

    assert b'event: ping\ndata: {"type": "ping"}\n\n' in raw
    assert b"event: message_stop" in raw
