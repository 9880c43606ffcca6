"""Failover between two providers serving one model (spec 6.4, 6.5): a retryable failure moves
on to the next provider and is charged once at its price; a client error does not fail over;
when every provider fails the client gets 502 and nothing is charged."""

from __future__ import annotations

import openai
import pytest
from fakes.openai_upstream import Behaviour

from e2e.support import (
    MODEL,
    assert_error,
    balance,
    chat_body,
    customer,
    ledger,
    positions,
    post_chat,
    request_events,
    request_record,
    sdk,
)

MESSAGES = [{"role": "user", "content": "one two three"}]
FIRST_CREDENTIAL = "sk-first-provider-0001"
SECOND_CREDENTIAL = "sk-second-provider-0002"
CREDIT = 1_000_000
# The fake reports 3 prompt and 4 completion tokens for MESSAGES.
FIRST_COST = 3 * 1 + 4 * 2
SECOND_COST = 3 * 5 + 4 * 10


def _provider(served, slug: str, base_url: str, priority: int, credential: str,
              timeout_ms: int = 5000) -> None:
    response = served.admin("POST", "/admin/providers",
                            json={"slug": slug, "base_url": base_url, "allow_private": True,
                                  "priority": priority, "credential": credential,
                                  "timeout_ms": timeout_ms})
    assert response.status_code == 201, response.text


@pytest.fixture
def two_providers(served, fake_openai):
    """``first`` (priority 1, cheap) and ``second`` (priority 2, dearer) both serve MODEL."""
    _provider(served, "first", fake_openai.base_url, 1, FIRST_CREDENTIAL)
    _provider(served, "second", fake_openai.base_url, 2, SECOND_CREDENTIAL)
    served.set_price(MODEL, "first", input_price="1", output_price="2")
    served.set_price(MODEL, "second", input_price="5", output_price="10")
    return served


def _usage_lines(served, key: str) -> list[dict]:
    return [line for line in ledger(served, key) if line["kind"] == "usage"]


def test_with_no_failure_the_first_priority_provider_serves_at_its_price(
        two_providers, fake_openai):
    who = customer(two_providers, credit_micros=CREDIT)

    raw = sdk(two_providers, who.key).chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES)

    assert raw.headers["x-gatewayz-provider"] == "first"
    record = request_record(two_providers, raw.headers["x-request-id"])
    assert record["provider"] == "first"
    assert record["charged_micros"] == FIRST_COST
    assert len(fake_openai.chat_requests()) == 1


@pytest.mark.parametrize("failure", [
    Behaviour(status=500), Behaviour(status=503), Behaviour(status=429),
    Behaviour(close_connection=True)], ids=["500", "503", "429", "connection-closed"])
def test_a_retryable_failure_fails_over_and_is_charged_once_at_the_second_price(
        two_providers, fake_openai, failure):
    who = customer(two_providers, credit_micros=CREDIT)
    fake_openai.script(failure, Behaviour())

    raw = sdk(two_providers, who.key).chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES)
    reply = raw.parse()

    assert reply.choices[0].message.content == "Echo: one two three"
    assert reply.model == MODEL
    assert raw.headers["x-gatewayz-provider"] == "second"
    calls = fake_openai.chat_requests()
    assert [c.headers["authorization"] for c in calls] == \
        [f"Bearer {FIRST_CREDENTIAL}", f"Bearer {SECOND_CREDENTIAL}"]
    assert [c.json for c in calls] == [calls[0].json] * 2
    request_id = raw.headers["x-request-id"]
    record = request_record(two_providers, request_id)
    assert record["status"] == "settled"
    assert record["provider"] == "second"
    assert record["charged_micros"] == SECOND_COST
    assert [(a["provider"], a["outcome"]) for a in record["attempts"]] == \
        [("first", "connection_error" if failure.close_connection else "http_error"),
         ("second", "ok")]
    assert request_events(two_providers, request_id) == ["HoldPlaced", "HoldSettled"]
    assert balance(two_providers, who.key)["balance_micros"] == CREDIT - SECOND_COST
    lines = _usage_lines(two_providers, who.key)
    assert [(line["amount_micros"], line["reference"]) for line in lines] == \
        [(-SECOND_COST, request_id)]


def test_a_stream_fails_over_before_its_first_byte_and_is_charged_at_the_second_price(
        two_providers, fake_openai):
    who = customer(two_providers, credit_micros=CREDIT)
    fake_openai.script(Behaviour(status=502), Behaviour())

    stream = sdk(two_providers, who.key).chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)

    assert chunks[-1].usage.completion_tokens == 4
    assert stream.response.headers["x-gatewayz-provider"] == "second"
    record = request_record(two_providers, stream.response.headers["x-request-id"])
    assert record["provider"] == "second"
    assert record["charged_micros"] == SECOND_COST
    assert balance(two_providers, who.key)["balance_micros"] == CREDIT - SECOND_COST


def test_a_provider_that_times_out_is_failed_over(served, fake_openai):
    _provider(served, "first", fake_openai.base_url, 1, FIRST_CREDENTIAL, timeout_ms=200)
    _provider(served, "second", fake_openai.base_url, 2, SECOND_CREDENTIAL)
    served.set_price(MODEL, "first", input_price="1", output_price="2")
    served.set_price(MODEL, "second", input_price="5", output_price="10")
    who = customer(served, credit_micros=CREDIT)
    fake_openai.script(Behaviour(delay_before_headers=1.0), Behaviour())

    raw = sdk(served, who.key).chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES)

    record = request_record(served, raw.headers["x-request-id"])
    assert record["provider"] == "second"
    assert [a["outcome"] for a in record["attempts"]] == ["timeout", "ok"]
    assert record["charged_micros"] == SECOND_COST


@pytest.mark.parametrize("status", [400, 422])
def test_a_provider_client_error_is_not_failed_over_and_charges_nothing(
        two_providers, fake_openai, status):
    who = customer(two_providers, credit_micros=CREDIT)
    fake_openai.script(Behaviour(status=status), Behaviour())

    # 9.8: the provider's status and code reach the client (the SDK's own exception).
    expected = openai.BadRequestError if status == 400 else openai.UnprocessableEntityError
    with pytest.raises(expected) as caught:
        sdk(two_providers, who.key).chat.completions.create(model=MODEL, messages=MESSAGES)

    error = caught.value
    assert error.status_code == status
    assert error.code == "invalid_request"
    assert len(fake_openai.chat_requests()) == 1
    request_id = error.response.headers["x-request-id"]
    record = request_record(two_providers, request_id)
    assert record["status"] == "voided"
    assert record["void_reason"] == "rejected"
    assert record["charged_micros"] == 0
    assert [(a["provider"], a["status"]) for a in record["attempts"]] == [("first", status)]
    assert request_events(two_providers, request_id) == ["HoldPlaced", "HoldVoided"]
    view = balance(two_providers, who.key)
    assert view["balance_micros"] == CREDIT
    assert view["open_holds"] == 0
    assert _usage_lines(two_providers, who.key) == []


def test_when_every_provider_fails_the_client_gets_502_and_one_void_and_no_charge(
        two_providers, fake_openai):
    who = customer(two_providers, credit_micros=CREDIT)
    fake_openai.script(Behaviour(status=500), Behaviour(status=503))
    before = positions(two_providers)

    response = post_chat(two_providers, who.key, chat_body())

    error = assert_error(response, 502, "provider_error")
    # Summarised, never the raw provider body (9.8, 2.8).
    assert "overloaded" not in error["message"]
    assert len(fake_openai.chat_requests()) == 2
    request_id = error["request_id"]
    record = request_record(two_providers, request_id)
    assert record["status"] == "voided"
    assert record["void_reason"] == "provider_error"
    assert [(a["provider"], a["status"]) for a in record["attempts"]] == \
        [("first", 500), ("second", 503)]
    assert request_events(two_providers, request_id) == ["HoldPlaced", "HoldVoided"]
    assert positions(two_providers)["requests"] == before["requests"] + 2
    view = balance(two_providers, who.key)
    assert view["balance_micros"] == CREDIT
    assert view["open_holds"] == 0 and view["available_micros"] == CREDIT
    assert _usage_lines(two_providers, who.key) == []


def test_when_every_provider_times_out_the_client_gets_504_and_no_charge(served, fake_openai):
    _provider(served, "first", fake_openai.base_url, 1, FIRST_CREDENTIAL, timeout_ms=150)
    _provider(served, "second", fake_openai.base_url, 2, SECOND_CREDENTIAL, timeout_ms=150)
    served.set_price(MODEL, "first")
    served.set_price(MODEL, "second")
    who = customer(served, credit_micros=CREDIT)
    fake_openai.script(Behaviour(delay_before_headers=1.0), Behaviour(delay_before_headers=1.0))

    with pytest.raises(openai.InternalServerError) as caught:
        sdk(served, who.key).chat.completions.create(model=MODEL, messages=MESSAGES)

    assert caught.value.status_code == 504
    assert caught.value.code == "provider_timeout"
    record = request_record(served, caught.value.response.headers["x-request-id"])
    assert record["status"] == "voided" and record["void_reason"] == "timeout"
    assert balance(served, who.key)["balance_micros"] == CREDIT


def test_the_sdk_sees_a_502_as_an_internal_server_error(two_providers, fake_openai):
    who = customer(two_providers, credit_micros=CREDIT)
    fake_openai.script(Behaviour(close_connection=True), Behaviour(close_connection=True))

    with pytest.raises(openai.InternalServerError) as caught:
        sdk(two_providers, who.key).chat.completions.create(model=MODEL, messages=MESSAGES)

    assert caught.value.status_code == 502
    assert caught.value.code == "provider_error"
    assert caught.value.type == "server_error"
