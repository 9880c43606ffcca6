"""Idempotency-Key on chat completions (spec 11.2, 6.4, 6.5): a repeat of a completed request
is replayed from the store with no new hold, charge or provider call. Streams under a key:
test_idempotency_streams.py; admin commands: test_idempotency_admin.py."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import timedelta

from fakes.openai_upstream import Behaviour

from adapters.clock import FrozenClock
from adapters.idempotency_sql import SqlIdempotencyStore
from application.idempotency import CLAIM_TTL, command_id, request_id_for
from e2e.support import (
    MODEL,
    account_requests,
    assert_error,
    balance,
    chat_body,
    customer,
    idempotency_row,
    positions,
    post_chat,
    request_record,
    sdk,
)

CREDIT = 1_000_000
MESSAGES = [{"role": "user", "content": "one two three"}]


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


def test_a_key_whose_request_failed_at_the_provider_can_be_retried_to_success(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    fake_openai.script(*[Behaviour(status=500)] * 3)  # a sole provider is tried 3 times

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

    refused = post_chat(priced, who.key, chat_body(n=129), headers=headers)
    accepted = post_chat(priced, who.key, chat_body(), headers=headers)

    assert_error(refused, 400, "invalid_request", "n")
    assert accepted.status_code == 200
    assert "idempotent-replayed" not in accepted.headers


# -- holes closed in the idempotency layer ---------------------------------------------------

def test_a_402_is_not_stored_so_the_key_works_once_the_account_has_credit(
        priced, fake_openai):
    who = customer(priced, credit_micros=0)
    headers = {"Idempotency-Key": uuid.uuid4().hex}

    refused = post_chat(priced, who.key, chat_body(), headers=headers)
    priced.grant(who.account_id, CREDIT)
    accepted = post_chat(priced, who.key, chat_body(), headers=headers)

    assert_error(refused, 402, "insufficient_credits")
    assert accepted.status_code == 200, accepted.text
    assert "idempotent-replayed" not in accepted.headers
    assert post_chat(priced, who.key, chat_body(),
                     headers=headers).headers["idempotent-replayed"] == "true"


def test_a_claim_left_by_a_crashed_worker_is_taken_over_after_the_hold_ttl(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    key = uuid.uuid4().hex
    raw = json.dumps(chat_body()).encode()
    crashed = SqlIdempotencyStore(
        priced.gateway.db, worker_id="crashed-worker",
        clock=FrozenClock(priced.gateway.clock.now() - CLAIM_TTL - timedelta(seconds=1)))
    crashed.claim(f"account:{who.account_id}", key, hashlib.sha256(raw).hexdigest())

    served = post_chat(priced, who.key, content=raw, headers={"Idempotency-Key": key})
    replay = post_chat(priced, who.key, content=raw, headers={"Idempotency-Key": key})

    assert served.status_code == 200, served.text
    assert "idempotent-replayed" not in served.headers
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == served.content
    assert idempotency_row(priced, key)[4] == 1
    assert len(fake_openai.chat_requests()) == 1


def test_chat_gets_a_command_id_derived_from_the_key_and_attempt(
        priced, fake_openai, monkeypatch):
    who = customer(priced, credit_micros=CREDIT)
    key = uuid.uuid4().hex
    seen: list[str | None] = []
    service = priced.gateway.inference

    class Recording(type(service)):
        async def chat(self, request_id, chat, principal, command_id=None):
            seen.append(command_id)
            return await super().chat(request_id, chat, principal)

    monkeypatch.setattr(service, "__class__", Recording)
    fake_openai.script(*[Behaviour(status=500)] * 3)  # a sole provider is tried 3 times

    failed = post_chat(priced, who.key, chat_body(), headers={"Idempotency-Key": key})
    retried = post_chat(priced, who.key, chat_body(), headers={"Idempotency-Key": key})
    post_chat(priced, who.key, chat_body(), headers={"Idempotency-Key": key})
    post_chat(priced, who.key, chat_body())

    assert (failed.status_code, retried.status_code) == (502, 200)
    scope = f"account:{who.account_id}"
    assert seen == [request_id_for(command_id(scope, key, 0)),
                    request_id_for(command_id(scope, key, 1)), None]
    assert seen[0].startswith("req_") and len(seen[0]) == 30
