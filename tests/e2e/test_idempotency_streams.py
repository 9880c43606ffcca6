"""Idempotency-Key on streamed chat completions (spec 11.2, 6.4, 6.5): a finished stream is
replayed as the events it sent; a stream still running, broken off by the provider or left by
the client after output is never run twice under one key."""

from __future__ import annotations

import time
import uuid

from fakes.openai_upstream import Behaviour

from e2e.support import (
    account_requests,
    assert_error,
    balance,
    chat_body,
    customer,
    idempotency_row,
    read_until_cut,
    request_record,
)

CREDIT = 1_000_000
LONG = " ".join(f"word{i}" for i in range(400))


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


# -- holes closed in the idempotency layer ---------------------------------------------------

def _wait_for_state(served, key: str, timeout: float = 5.0) -> tuple:
    """The record once it has left in_progress (a stream records itself when it ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = idempotency_row(served, key)
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
        broken, cut = read_until_cut(response)
        broken_id = response.headers["x-request-id"]
    assert cut  # the client's connection is cut as the provider's was
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
