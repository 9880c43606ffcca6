"""Embeddings (9.3) through the official OpenAI SDK, billed for input tokens only through the
hold and settlement of chat; and Anthropic's count_tokens (9.6), which is never billed."""

from __future__ import annotations

import httpx
import pytest
from fakes.openai_upstream import embedding_vector

from e2e.anthropic_support import ANTHROPIC_MODEL, anthropic_sdk
from e2e.support import (
    MODEL,
    assert_error,
    balance,
    customer,
    positions,
    request_record,
    sdk,
)

CREDIT = 5_000_000
TEXTS = ["alpha beta", "gamma", "delta epsilon zeta"]



def test_three_inputs_get_three_vectors_in_order_and_only_input_tokens_are_charged(
        both, fake_openai):
    who = customer(both, credit_micros=CREDIT)

    raw = sdk(both, who.key).embeddings.with_raw_response.create(model=MODEL, input=TEXTS)
    answer = raw.parse()

    assert [d.index for d in answer.data] == [0, 1, 2]
    assert [d.embedding for d in answer.data] == [embedding_vector(t) for t in TEXTS]
    assert answer.model == MODEL
    record = request_record(both, raw.headers["x-request-id"])
    assert record["status"] == "settled"
    assert record["charged_micros"] == answer.usage.prompt_tokens * 1  # input price only
    assert raw.headers["x-gatewayz-cost-micros"] == str(record["charged_micros"])
    assert balance(both, who.key)["balance_micros"] == CREDIT - record["charged_micros"]
    assert fake_openai.embedding_requests()[-1].json["input"] == TEXTS


def test_base64_embeddings_decode_to_the_same_floats(both):
    who = customer(both, credit_micros=CREDIT)
    client = sdk(both, who.key)

    floats = client.embeddings.create(model=MODEL, input=TEXTS, encoding_format="float")
    # The SDK asks for base64 by default and decodes it itself.
    decoded = client.embeddings.create(model=MODEL, input=TEXTS)

    assert [d.embedding for d in decoded.data] == [d.embedding for d in floats.data]


@pytest.mark.parametrize(("body", "param"), [
    ({"model": MODEL, "input": ["x"] * 2049}, "input"),
    ({"model": MODEL, "input": []}, "input"),
    ({"model": MODEL, "input": "x", "encoding_format": "hex"}, "encoding_format"),
    ({"model": MODEL, "input": "x", "dimensions": 0}, "dimensions"),
    ({"input": "x"}, "model"),
])
def test_a_bad_embeddings_request_is_refused_and_changes_no_event_store(
        both, fake_openai, body, param):
    who = customer(both, credit_micros=CREDIT)
    before = positions(both)

    response = both.http.post("/v1/embeddings", json=body,
                              headers={"Authorization": f"Bearer {who.key}"})

    assert_error(response, 400, "invalid_request", param)
    assert positions(both) == before
    assert fake_openai.embedding_requests() == []


def test_embeddings_of_a_model_only_anthropic_serves_are_refused_before_any_hold(both):
    who = customer(both, credit_micros=CREDIT)
    before = positions(both)

    response = both.http.post("/v1/embeddings", json={"model": ANTHROPIC_MODEL, "input": "x"},
                              headers={"Authorization": f"Bearer {who.key}"})

    assert_error(response, 400, "unsupported_parameter", "model")
    assert positions(both) == before


def test_count_tokens_is_exact_from_an_anthropic_upstream_and_never_billed(
        both, fake_anthropic):
    who = customer(both, credit_micros=CREDIT)
    before = positions(both)
    messages = [{"role": "user", "content": "one two three four"}]

    raw = anthropic_sdk(both, who.key).messages.with_raw_response.count_tokens(
        model=ANTHROPIC_MODEL, messages=messages)

    assert raw.parse().input_tokens == 4  # the fake counts words
    assert "x-gatewayz-token-count" not in raw.headers
    assert fake_anthropic.count_tokens_requests()[-1].json["model"] == "claude-sonnet-x"
    assert positions(both) == before


def test_count_tokens_for_an_openai_upstream_is_an_estimate_and_says_so(both):
    who = customer(both, credit_micros=CREDIT)
    before = positions(both)

    response = httpx.post(f"{both.url}/v1/messages/count_tokens",
                          headers={"x-api-key": who.key, "anthropic-version": "2023-06-01"},
                          json={"model": MODEL, "messages": [{"role": "user",
                                                              "content": "one two three"}]})

    assert response.status_code == 200, response.text
    assert response.headers["x-gatewayz-token-count"] == "estimated"
    assert response.json()["input_tokens"] > 0
    assert positions(both) == before
