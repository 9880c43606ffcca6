"""Anonymous use (1.11): no credential, only chat and messages, only free models, three a
day per address, and nothing recorded in the event store."""

from __future__ import annotations

import pytest

from e2e.support import assert_error, chat_body, positions, post_chat, price_model

FREE = "acme/chat-1:free"


@pytest.fixture
def free(served, fake_openai):
    price_model(served, fake_openai, model=FREE, input_price="0", output_price="0")
    price_model(served, fake_openai, slug="paid", model="acme/priced:free")
    return served


def test_three_anonymous_requests_a_day_are_served_and_recorded_nowhere(free, fake_openai):
    before = positions(free)

    answers = [post_chat(free, None, chat_body(model=FREE)) for _ in range(3)]
    fourth = post_chat(free, None, chat_body(model=FREE))

    assert [a.status_code for a in answers] == [200, 200, 200], answers[0].text
    assert answers[0].json()["choices"][0]["message"]["content"]
    assert len(fake_openai.requests) == 3
    assert_error(fourth, 429, "rate_limit_exceeded")
    assert fourth.headers["x-gatewayz-ratelimit-scope"] == "anonymous"
    assert int(fourth.headers["retry-after"]) >= 1
    assert positions(free) == before  # no hold, no settlement, no event of any kind


def test_an_anonymous_stream_of_a_free_model_is_served(free):
    answer = post_chat(free, None, chat_body(model=FREE, stream=True))
    assert answer.status_code == 200
    assert answer.text.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize("model", ["acme/chat-1", "acme/priced:free"])
def test_a_model_that_is_not_free_needs_a_key(free, fake_openai, model):
    before = positions(free)
    assert_error(post_chat(free, None, chat_body(model=model)), 401, "missing_api_key")
    assert not fake_openai.requests
    assert positions(free)["requests"] == before["requests"]


def test_anonymous_messages_use_a_free_model_and_other_routes_need_a_key(free):
    answer = free.http.post("/v1/messages", headers={"anthropic-version": "2023-06-01"},
                            json={"model": FREE, "max_tokens": 16,
                                  "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["type"] == "message"
    embeddings = free.http.post("/v1/embeddings", json={"model": FREE, "input": "x"})
    assert_error(embeddings, 401, "missing_api_key")
    legacy = free.http.post("/v1/completions", json={"model": FREE, "prompt": "x"})
    assert_error(legacy, 401, "missing_api_key")


def test_an_unreadable_body_without_a_key_is_a_missing_key_not_a_bad_body(free):
    # 1.2: the credential is checked before the body; only a free model's request is read.
    answer = free.http.post("/v1/chat/completions", content=b"{",
                            headers={"Content-Type": "application/json"})
    assert_error(answer, 401, "missing_api_key")
