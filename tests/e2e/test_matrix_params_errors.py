"""The parameter and error accept lines of spec 9.6, 9.8 and 9.10 through the matrix's two
SDKs: unknown fields forwarded to an upstream of the client's format and named as dropped
for the other, an ignored sampling parameter named as dropped, a missing max_tokens in
Anthropic's error shape, and the Anthropic SDK's own exception types for gateway errors."""

from __future__ import annotations

import anthropic
import openai
import pytest
from fakes.anthropic_upstream import Behaviour

from e2e.anthropic_support import ANTHROPIC_MODEL, anthropic_sdk, price_anthropic
from e2e.matrix_support import SLUGS, Upstream
from e2e.support import MODEL, customer, price_model, sdk

DROPPED = "x-gatewayz-dropped-params"


def _both_upstreams(served, fake_openai, fake_anthropic) -> str:
    price_model(served, fake_openai)
    price_anthropic(served, fake_anthropic)
    return customer(served).key


@pytest.mark.parametrize(("client", "upstream"), [
    ("openai", "openai"), ("openai", "anthropic"), ("anthropic", "anthropic"),
    ("anthropic", "openai")])
def test_an_unknown_field_reaches_an_upstream_of_the_clients_format_else_is_named_dropped(
        served, fake_openai, fake_anthropic, client, upstream):
    key = _both_upstreams(served, fake_openai, fake_anthropic)
    model = MODEL if upstream == "openai" else ANTHROPIC_MODEL
    messages = [{"role": "user", "content": "hello"}]

    if client == "openai":
        raw = sdk(served, key).chat.completions.with_raw_response.create(
            model=model, messages=messages, extra_body={"foo": 1})
    else:
        raw = anthropic_sdk(served, key).messages.with_raw_response.create(
            model=model, messages=messages, max_tokens=64, extra_body={"foo": 1})

    assert raw.status_code == 200
    assert raw.headers["x-gatewayz-provider"] == SLUGS[upstream]
    sent = Upstream(upstream, fake_openai if upstream == "openai" else fake_anthropic,
                    []).last()
    if client == upstream:
        assert sent["foo"] == 1
        assert DROPPED not in raw.headers
    else:
        assert "foo" not in sent
        assert raw.headers[DROPPED] == "foo"


def test_presence_penalty_to_an_anthropic_upstream_is_dropped_and_named(
        served, fake_anthropic):
    price_anthropic(served, fake_anthropic)
    client = sdk(served, customer(served).key)

    raw = client.chat.completions.with_raw_response.create(
        model=ANTHROPIC_MODEL, messages=[{"role": "user", "content": "hello"}],
        presence_penalty=0.5)

    assert raw.status_code == 200
    assert raw.headers[DROPPED] == "presence_penalty"
    assert raw.parse().choices[0].message.content == "Echo: hello"
    assert "presence_penalty" not in fake_anthropic.message_requests()[-1].json


def test_a_messages_request_without_max_tokens_is_400_in_anthropics_error_shape(
        served, fake_anthropic):
    price_anthropic(served, fake_anthropic)
    key = customer(served).key

    response = served.http.post("/v1/messages", headers={
        "x-api-key": key, "anthropic-version": "2023-06-01"}, json={
        "model": ANTHROPIC_MODEL, "messages": [{"role": "user", "content": "hello"}]})

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert fake_anthropic.message_requests() == []


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
def test_the_anthropic_sdk_raises_its_own_types_for_a_bad_key_and_an_unknown_model(
        served, fake_openai, fake_anthropic, upstream):
    key = _both_upstreams(served, fake_openai, fake_anthropic)
    model = MODEL if upstream == "openai" else ANTHROPIC_MODEL
    messages = [{"role": "user", "content": "hello"}]

    with pytest.raises(anthropic.AuthenticationError) as bad_key:
        anthropic_sdk(served, key[:-4] + "xxxx").messages.create(
            model=model, messages=messages, max_tokens=64)
    with pytest.raises(anthropic.NotFoundError) as unknown:
        anthropic_sdk(served, key).messages.create(model="claude/no-such-model",
                                                   messages=messages, max_tokens=64)

    assert bad_key.value.status_code == 401
    assert bad_key.value.body["error"]["type"] == "authentication_error"
    assert unknown.value.status_code == 404
    assert unknown.value.body["error"]["type"] == "not_found_error"
    for error in (bad_key.value, unknown.value):
        assert error.body["type"] == "error"
        assert error.request_id == error.response.headers["x-request-id"]
    assert fake_openai.chat_requests() == [] and fake_anthropic.message_requests() == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_anthropic_429_is_a_rate_limit_error_with_retry_after_in_both_sdks(
        served, fake_anthropic, stream):
    price_anthropic(served, fake_anthropic)
    key = customer(served).key
    fake_anthropic.default = Behaviour(status=429, retry_after=7)
    messages = [{"role": "user", "content": "hello"}]

    with pytest.raises(anthropic.RateLimitError) as from_anthropic:
        anthropic_sdk(served, key).messages.create(model=ANTHROPIC_MODEL, messages=messages,
                                                   max_tokens=64, stream=stream)
    with pytest.raises(openai.RateLimitError) as from_openai:
        sdk(served, key).chat.completions.create(model=ANTHROPIC_MODEL, messages=messages,
                                                 stream=stream)

    assert from_anthropic.value.body["error"]["type"] == "rate_limit_error"
    assert from_openai.value.body["type"] == "rate_limit_error"
    for error in (from_anthropic.value, from_openai.value):
        assert error.status_code == 429
        assert error.response.headers["retry-after"] == "7"
