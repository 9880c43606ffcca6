"""Proves FakeAnthropic's count_tokens and models endpoints, routing, script order and lifecycle."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from fakes.anthropic_upstream import Behaviour, FakeAnthropic

MODEL = "claude-sonnet-4-5-20250929"
USER = [{"role": "user", "content": "hello there world"}]



def test_count_tokens_and_models(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=USER, system="be brief")
    assert counted.input_tokens == 5
    assert fake.count_tokens_requests()[0].json["model"] == MODEL
    message = client.messages.create(model=MODEL, max_tokens=10, messages=USER,
                                     system="be brief")
    assert message.usage.input_tokens == counted.input_tokens

    models = list(client.models.list())
    assert [m.id for m in models] == fake.models
    assert all(m.type == "model" and m.display_name for m in models)
    assert client.models.retrieve(fake.models[0]).id == fake.models[0]
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-nope")
    page = httpx.get(f"{fake.base_url}/models", params={"limit": 1},
                     headers={"x-api-key": fake.api_key, "anthropic-version": "2023-06-01"})
    assert page.json()["has_more"] is True
    assert page.json()["first_id"] == page.json()["last_id"] == fake.models[0]


def test_unknown_path_script_order_and_reset(fake: FakeAnthropic,
                                             client: anthropic.Anthropic) -> None:
    response = httpx.get(f"{fake.base_url}/nope",
                         headers={"x-api-key": fake.api_key, "anthropic-version": "2023-06-01"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    fake.script(Behaviour(text="first"), Behaviour(text="second"))
    answers = [client.messages.create(model=MODEL, max_tokens=10, messages=USER).content[0].text
               for _ in range(3)]
    assert answers == ["first", "second", "Echo: hello there world"]
    assert len(fake.wait_for_requests(4)) == 4
    fake.script(Behaviour(text="queued"))
    fake.reset()
    assert fake.requests == []
    assert client.messages.create(model=MODEL, max_tokens=10,
                                  messages=USER).content[0].text == "Echo: hello there world"


def test_custom_api_key_and_lifecycle() -> None:
    fake = FakeAnthropic(name="lifecycle", api_key="sk-ant-other")
    assert fake.start() is fake.start()
    assert fake.base_url.endswith("/v1")
    with anthropic.Anthropic(base_url=fake.root_url, api_key="sk-ant-other",
                             max_retries=0) as sdk:
        assert sdk.messages.create(model=MODEL, max_tokens=10, messages=USER).content
    url = fake.base_url
    fake.stop()
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models")
