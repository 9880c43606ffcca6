"""Idempotency-Key on chat completions (spec 11.2, 6.4, 6.5): a repeat of a completed request
is replayed from the store with no new hold, charge or provider call."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
from fakes.openai_upstream import Behaviour

from adapters.clock import FrozenClock
from adapters.idempotency_sql import SqlIdempotencyStore
from application.idempotency import CLAIM_TTL, command_id, request_id_for
from domain.errors import DomainError
from e2e.support import (
    MODEL,
    account_requests,
    assert_error,
    balance,
    chat_body,
    customer,
    positions,
    post_chat,
    request_record,
    sdk,
)

CREDIT = 1_000_000
LONG = " ".join(f"word{i}" for i in range(400))
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


# -- holes closed in the idempotency layer ---------------------------------------------------

def _idempotency_row(served, key: str) -> tuple | None:
    with served.gateway.db.transaction() as cur:
        cur.execute("SELECT state, status, content_type, body, attempt FROM "
                    "idempotency_records WHERE idem_key = %s", (key,))
        return cur.fetchone()


def _wait_for_state(served, key: str, timeout: float = 5.0) -> tuple:
    """The record once it has left in_progress (a stream records itself when it ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = _idempotency_row(served, key)
        if row is not None and row[0] != "in_progress":
            return row
        time.sleep(0.02)
    raise AssertionError(f"the record of {key} stayed in progress: {row}")


def test_a_repeat_while_a_stream_is_still_running_gets_409_not_an_empty_answer(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.default = Behaviour(content=" ".join(LONG.split()[:60]), chunk_interval=0.01)
    headers = {"Authorization": f"Bearer {who.key}", "Idempotency-Key": uuid.uuid4().hex}
    body = chat_body(stream=True)

    with priced.http.stream("POST", "/v1/chat/completions", headers=headers,
                            json=body) as response:
        chunks = response.iter_raw()
        first = [next(chunks)]
        during = priced.http.post("/v1/chat/completions", headers=headers, json=body)
        first.extend(chunks)
    streamed = b"".join(first)
    _wait_for_state(priced, headers["Idempotency-Key"])
    replay = priced.http.post("/v1/chat/completions", headers=headers, json=body)

    assert_error(during, 409, "idempotency_in_progress")
    assert streamed.endswith(b"data: [DONE]\n\n")
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["content-type"].startswith("text/event-stream")
    assert replay.content == streamed
    assert len(fake_openai.chat_requests()) == 1


def test_a_stream_the_provider_broke_off_is_not_stored_and_its_key_can_be_retried(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.script(Behaviour(fail_mid_stream_after=2))
    headers = {"Authorization": f"Bearer {who.key}", "Idempotency-Key": uuid.uuid4().hex}
    body = chat_body(stream=True)

    with priced.http.stream("POST", "/v1/chat/completions", headers=headers,
                            json=body) as response:
        broken = b"".join(response.iter_raw())
        broken_id = response.headers["x-request-id"]
    assert _wait_for_state(priced, headers["Idempotency-Key"])[0] == "released"
    retried = priced.http.post("/v1/chat/completions", headers=headers, json=body)

    assert b"[DONE]" not in broken and b"provider_error" in broken
    assert retried.status_code == 200
    assert "idempotent-replayed" not in retried.headers
    assert retried.content.endswith(b"data: [DONE]\n\n")
    assert request_record(priced, broken_id)["status"] == "voided"
    record = request_record(priced, retried.headers["x-request-id"])
    assert len(fake_openai.chat_requests()) == 2
    assert balance(priced, who.key)["balance_micros"] == CREDIT - record["charged_micros"]


def test_a_stream_the_client_left_after_output_is_never_run_again_under_its_key(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.default = Behaviour(content=LONG, chunk_interval=0.01)
    headers = {"Authorization": f"Bearer {who.key}", "Idempotency-Key": uuid.uuid4().hex}
    body = chat_body(stream=True)

    with priced.http.stream("POST", "/v1/chat/completions", headers=headers,
                            json=body) as response:
        request_id = response.headers["x-request-id"]
        chunks = response.iter_raw()
        for _ in range(5):
            next(chunks)
    record = request_record(priced, request_id)
    state = _wait_for_state(priced, headers["Idempotency-Key"])
    retried = priced.http.post("/v1/chat/completions", headers=headers, json=body)

    assert record["status"] == "settled" and record["charged_micros"] > 0
    assert state[0] == "unknown" and state[3] is None
    error = assert_error(retried, 409, "conflict")
    assert error["details"] == {"idempotency_state": "unknown"}
    assert "new Idempotency-Key" in error["message"]
    assert len(fake_openai.chat_requests()) == 1
    assert account_requests(priced, who.account_id) == [(request_id, "settled")]


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
    assert _idempotency_row(priced, key)[4] == 1
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
    fake_openai.script(Behaviour(status=500))

    failed = post_chat(priced, who.key, chat_body(), headers={"Idempotency-Key": key})
    retried = post_chat(priced, who.key, chat_body(), headers={"Idempotency-Key": key})
    post_chat(priced, who.key, chat_body(), headers={"Idempotency-Key": key})
    post_chat(priced, who.key, chat_body())

    assert (failed.status_code, retried.status_code) == (502, 200)
    scope = f"account:{who.account_id}"
    assert seen == [request_id_for(command_id(scope, key, 0)),
                    request_id_for(command_id(scope, key, 1)), None]
    assert seen[0].startswith("req_") and len(seen[0]) == 30


# -- admin commands ---------------------------------------------------------------------------

def _grant(served, account_id: str, key: str, amount: int = 250_000):
    return served.admin("POST", "/admin/credits/grants", headers={"Idempotency-Key": key},
                        json={"account_id": account_id, "amount_micros": amount,
                              "reason": "credit for an idempotency test"})


def test_a_grant_that_failed_after_its_commit_is_never_applied_twice(served, monkeypatch):
    who = customer(served, credit_micros=0)
    key = uuid.uuid4().hex
    commit = served.gateway.accounts.grant_credits

    def commits_then_fails(*args, **kwargs):
        commit(*args, **kwargs)
        raise RuntimeError("connection lost after the commit")

    monkeypatch.setattr(served.gateway.accounts, "grant_credits", commits_then_fails)
    failed = _grant(served, who.account_id, key)
    monkeypatch.undo()
    retried = _grant(served, who.account_id, key)

    assert_error(failed, 500, "internal_error")
    error = assert_error(retried, 409, "conflict")
    assert error["details"] == {"idempotency_state": "unknown"}
    assert balance(served, who.key)["balance_micros"] == 250_000


def test_a_grant_refused_by_the_use_case_releases_its_key(served, monkeypatch):
    who = customer(served, credit_micros=0)
    key = uuid.uuid4().hex
    commit = served.gateway.accounts.grant_credits
    calls = []

    def refuses_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise DomainError("conflict", "too many concurrent changes; retry")
        return commit(*args, **kwargs)

    monkeypatch.setattr(served.gateway.accounts, "grant_credits", refuses_once)
    refused = _grant(served, who.account_id, key)
    retried = _grant(served, who.account_id, key)
    replayed = _grant(served, who.account_id, key)

    assert_error(refused, 409, "conflict")
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert replayed.headers["idempotent-replayed"] == "true"
    assert len(calls) == 2
    assert balance(served, who.key)["balance_micros"] == 250_000


@pytest.mark.parametrize("route", ["issue", "rotate"])
def test_a_key_is_shown_once_and_never_stored_with_its_idempotency_record(served, route):
    who = customer(served, credit_micros=0)
    key = uuid.uuid4().hex
    if route == "issue":
        path, body = f"/admin/accounts/{who.account_id}/keys", {"name": "idem-key"}
    else:
        path, body = f"/admin/keys/{who.key_id}/rotate", {"grace_seconds": 60}

    first = served.admin("POST", path, headers={"Idempotency-Key": key}, json=body)
    replay = served.admin("POST", path, headers={"Idempotency-Key": key}, json=body)

    assert first.status_code == replay.status_code == (201 if route == "issue" else 200)
    secret = first.json()["key"]
    assert secret.startswith("gw_") and "key_redacted" not in first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == {**first.json(), "key": None, "key_redacted": True}
    stored = _idempotency_row(served, key)
    assert stored[0] == "done" and secret not in stored[3] and secret[-12:] not in stored[3]
    assert balance(served, secret)["balance_micros"] == 0  # the key shown once works
