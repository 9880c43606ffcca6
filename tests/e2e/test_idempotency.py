"""Idempotency-Key on chat completions (spec 11.2, 6.4, 6.5): a repeat of a completed request
is replayed from the store with no new hold, charge or provider call."""

from __future__ import annotations

import threading
import uuid

import pytest
from fakes.openai_upstream import Behaviour

from e2e.support import (
    MODEL,
    account_requests,
    assert_error,
    balance,
    chat_body,
    customer,
    positions,
    post_chat,
    price_model,
    request_record,
    sdk,
)

CREDIT = 1_000_000
MESSAGES = [{"role": "user", "content": "one two three"}]


@pytest.fixture
def priced(served, fake_openai):
    price_model(served, fake_openai)
    return served


def test_the_same_key_and_body_twice_replays_the_first_answer_and_charges_once(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    key = uuid.uuid4().hex
    headers = {"Idempotency-Key": key}

    first = post_chat(priced, who.key, chat_body(), headers=headers)
    record = request_record(priced, first.headers["x-request-id"])
    after_first = positions(priced)
    second = post_chat(priced, who.key, chat_body(), headers=headers)

    assert first.status_code == second.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.content == first.content
    assert second.json()["id"] == first.json()["id"]
    assert len(fake_openai.chat_requests()) == 1
    assert positions(priced) == after_first
    assert account_requests(priced, who.account_id) == [(record["id"], "settled")]
    assert balance(priced, who.key)["balance_micros"] == CREDIT - record["charged_micros"]


def test_the_sdk_retrying_with_one_idempotency_key_gets_the_same_completion(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    client = sdk(priced, who.key)
    headers = {"Idempotency-Key": f"sdk-{uuid.uuid4().hex}"}

    first = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, extra_headers=headers)
    second = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, extra_headers=headers)

    assert second.headers["idempotent-replayed"] == "true"
    assert second.parse().id == first.parse().id
    assert second.parse().choices[0].message.content == "Echo: one two three"
    assert len(fake_openai.chat_requests()) == 1
    record = request_record(priced, first.headers["x-request-id"])
    assert account_requests(priced, who.account_id) == [(record["id"], "settled")]


def test_the_same_key_with_a_different_body_is_refused_with_422_and_no_event(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = post_chat(priced, who.key, chat_body("first question"), headers=headers)
    request_record(priced, first.headers["x-request-id"])
    before = positions(priced)
    money = balance(priced, who.key)

    response = post_chat(priced, who.key, chat_body("another question"), headers=headers)

    assert_error(response, 422, "idempotency_key_reused")
    assert positions(priced) == before
    assert balance(priced, who.key) == money
    assert len(fake_openai.chat_requests()) == 1


def test_a_replayed_stream_returns_the_assembled_events_and_charges_once(priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    headers = {"Authorization": f"Bearer {who.key}", "Idempotency-Key": uuid.uuid4().hex}
    body = chat_body(stream=True, stream_options={"include_usage": True})

    with priced.http.stream("POST", "/v1/chat/completions", headers=headers,
                            json=body) as response:
        first = b"".join(response.iter_raw())
        request_id = response.headers["x-request-id"]
    record = request_record(priced, request_id)
    replay = priced.http.post("/v1/chat/completions", headers=headers, json=body)

    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["content-type"].startswith("text/event-stream")
    assert replay.content == first
    assert first.endswith(b"data: [DONE]\n\n")
    assert len(fake_openai.chat_requests()) == 1
    assert account_requests(priced, who.account_id) == [(request_id, "settled")]
    assert balance(priced, who.key)["balance_micros"] == CREDIT - record["charged_micros"]


def test_a_key_whose_request_failed_at_the_provider_can_be_retried_to_success(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    fake_openai.script(Behaviour(status=500))

    failed = post_chat(priced, who.key, chat_body(), headers=headers)
    retried = post_chat(priced, who.key, chat_body(), headers=headers)

    assert_error(failed, 502, "provider_error")
    assert retried.status_code == 200, retried.text
    assert "idempotent-replayed" not in retried.headers
    record = request_record(priced, retried.headers["x-request-id"])
    request_record(priced, failed.headers["x-request-id"])
    statuses = sorted(status for _, status in account_requests(priced, who.account_id))
    assert statuses == ["settled", "voided"]
    assert balance(priced, who.key)["balance_micros"] == CREDIT - record["charged_micros"]


def test_an_idempotency_key_is_scoped_to_the_account(priced, fake_openai):
    alice, bob = customer(priced, credit_micros=CREDIT), customer(priced, credit_micros=CREDIT)
    headers = {"Idempotency-Key": "shared-key-1"}

    for_alice = post_chat(priced, alice.key, chat_body(), headers=headers)
    for_bob = post_chat(priced, bob.key, chat_body(), headers=headers)

    assert for_alice.status_code == for_bob.status_code == 200
    assert "idempotent-replayed" not in for_bob.headers
    assert for_alice.json()["id"] != for_bob.json()["id"]
    assert len(fake_openai.chat_requests()) == 2


def test_a_repeat_while_the_first_is_in_flight_gets_409_with_retry_after(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    fake_openai.script(Behaviour(delay_before_headers=0.6))
    results = {}

    def first() -> None:
        results["first"] = post_chat(priced, who.key, chat_body(), headers=headers)

    thread = threading.Thread(target=first)
    thread.start()
    fake_openai.wait_for_requests(1)
    second = post_chat(priced, who.key, chat_body(), headers=headers)
    thread.join()

    assert_error(second, 409, "idempotency_in_progress")
    assert second.headers["retry-after"] == "1"
    assert results["first"].status_code == 200
    assert len(fake_openai.chat_requests()) == 1
    record = request_record(priced, results["first"].headers["x-request-id"])
    assert account_requests(priced, who.account_id) == [(record["id"], "settled")]


def test_an_idempotency_key_longer_than_255_characters_is_refused_with_no_event(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    before = positions(priced)

    response = post_chat(priced, who.key, chat_body(), headers={"Idempotency-Key": "k" * 256})

    assert_error(response, 400, "invalid_request")
    assert positions(priced) == before
    assert fake_openai.chat_requests() == []


def test_a_request_refused_for_bad_input_stores_nothing_under_its_key(priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    headers = {"Idempotency-Key": uuid.uuid4().hex}

    refused = post_chat(priced, who.key, chat_body(n=9), headers=headers)
    accepted = post_chat(priced, who.key, chat_body(), headers=headers)

    assert_error(refused, 400, "invalid_request", "n")
    assert accepted.status_code == 200
    assert "idempotent-replayed" not in accepted.headers
