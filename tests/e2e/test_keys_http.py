"""Self-service routes for a key holder (spec 6.3, 1.1, 1.4): balance and ledger agree with
what was charged, key listings never show a secret, scopes are enforced."""

from __future__ import annotations

import dataclasses
import time
import uuid

from conftest import ServedGateway, close_gateway, make_settings
from fakes.openai_upstream import Behaviour

from e2e.support import (
    MODEL,
    account_requests,
    assert_error,
    balance,
    chat_body,
    customer,
    ledger,
    positions,
    post_chat,
    request_record,
    sdk,
)
from entrypoints.bootstrap import Gateway

CREDIT = 2_000_000


def _get(served, path: str, key: str):
    return served.http.get(path, headers={"Authorization": f"Bearer {key}"})


def test_the_balance_and_the_ledger_agree_exactly_with_what_each_request_was_charged(
        priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    client = sdk(priced, who.key)
    fake_openai.script(Behaviour(), *[Behaviour(status=500)] * 3, Behaviour(),  # 3 tries
                       Behaviour(empty_stream=True))
    ids = []
    ids.append(client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "a b c d e"}]
    ).headers["x-request-id"])
    ids.append(post_chat(priced, who.key, chat_body()).headers["x-request-id"])
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "f g"}], stream=True,
        stream_options={"include_usage": True})
    list(stream)
    ids.append(stream.response.headers["x-request-id"])
    empty = client.chat.completions.create(model=MODEL, messages=[{"role": "user",
                                                                   "content": "h"}],
                                           stream=True)
    list(empty)
    ids.append(empty.response.headers["x-request-id"])

    records = [request_record(priced, request_id) for request_id in ids]
    view = balance(priced, who.key)
    lines = ledger(priced, who.key)

    assert [r["status"] for r in records] == ["settled", "voided", "settled", "voided"]
    charged = sum(r["charged_micros"] for r in records)
    assert charged > 0
    assert view["balance_micros"] == CREDIT - charged
    assert sum(line["amount_micros"] for line in lines) == view["balance_micros"]
    assert lines[-1]["balance_micros"] == view["balance_micros"]
    assert view["open_holds"] == 0 and view["open_holds_micros"] == 0
    assert view["available_micros"] == view["balance_micros"]
    usage = [line for line in lines if line["kind"] == "usage"]
    assert sorted((line["reference"], -line["amount_micros"]) for line in usage) == \
        sorted((r["id"], r["charged_micros"]) for r in records if r["status"] == "settled")
    assert [line["amount_micros"] for line in lines if line["kind"] != "usage"] == [CREDIT]


def test_an_open_hold_shows_in_the_balance_while_a_stream_is_running(priced, fake_openai):
    who = customer(priced, credit_micros=CREDIT)
    fake_openai.default = Behaviour(content=" ".join(["word"] * 150), chunk_interval=0.01)

    stream = sdk(priced, who.key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "go"}], stream=True)
    next(iter(stream))
    deadline = time.monotonic() + 1.0  # the read model follows the event within moments
    during = balance(priced, who.key)
    while during["open_holds"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
        during = balance(priced, who.key)
    list(stream)
    record = request_record(priced, stream.response.headers["x-request-id"])
    after = balance(priced, who.key)

    assert during["open_holds"] == 1
    assert during["open_holds_micros"] == record["hold_micros"]
    assert during["available_micros"] == CREDIT - record["hold_micros"]
    assert during["balance_micros"] == CREDIT
    assert after["open_holds"] == 0
    assert after["balance_micros"] == CREDIT - record["charged_micros"]


def test_the_key_listing_shows_prefix_and_last4_but_never_a_secret(priced):
    who = customer(priced)
    second = priced.issue_key(who.account_id, environment="test")
    other = customer(priced)

    response = _get(priced, "/v1/keys", who.key)

    assert response.status_code == 200, response.text
    keys = {k["id"]: k for k in response.json()["data"]}
    assert set(keys) == {who.key_id, second["id"]}
    for key_id, secret in ((who.key_id, who.key), (second["id"], second["key"])):
        assert keys[key_id]["prefix"] == secret[:12]
        assert keys[key_id]["last4"] == secret[-4:]
        assert keys[key_id]["status"] == "active"
        assert secret not in response.text
        assert secret[12:-4] not in response.text
    assert keys[second["id"]]["environment"] == "test"
    assert other.key_id not in response.text
    assert "hash" not in response.text.lower()


def test_a_rotated_key_is_listed_with_its_new_prefix_and_last4(priced):
    who = customer(priced)
    rotated = priced.admin("POST", f"/admin/keys/{who.key_id}/rotate",
                           json={"grace_seconds": 60}).json()

    old_view = _get(priced, "/v1/keys", who.key)
    new_view = _get(priced, "/v1/keys", rotated["key"])

    assert old_view.status_code == new_view.status_code == 200
    listed = new_view.json()["data"][0]
    assert listed["id"] == who.key_id
    assert (listed["prefix"], listed["last4"]) == (rotated["key"][:12], rotated["key"][-4:])
    assert listed["rotated_at"] is not None
    assert rotated["key"] not in new_view.text and who.key not in new_view.text


def test_a_revoked_key_is_listed_as_revoked_to_the_accounts_other_keys(priced):
    who = customer(priced)
    spare = priced.issue_key(who.account_id)
    priced.admin("POST", f"/admin/keys/{who.key_id}/revoke", json={"reason": "rotated out"})

    response = _get(priced, "/v1/keys", spare["key"])

    statuses = {k["id"]: k["status"] for k in response.json()["data"]}
    assert statuses == {who.key_id: "revoked", spare["id"]: "active"}


def test_a_key_without_the_billing_scope_cannot_read_the_balance(priced):
    who = customer(priced, scopes=["inference:use"])

    response = _get(priced, "/v1/account/balance", who.key)

    assert_error(response, 403, "insufficient_scope")


def test_a_key_without_the_inference_scope_is_refused_before_any_hold(priced, fake_openai):
    who = customer(priced, scopes=["billing:read", "keys:read"])
    before = positions(priced)

    response = post_chat(priced, who.key, chat_body())

    assert_error(response, 403, "insufficient_scope")
    assert positions(priced)["requests"] == before["requests"]
    assert fake_openai.chat_requests() == []
    assert account_requests(priced, who.account_id) == []
    assert _get(priced, "/v1/account/balance", who.key).status_code == 200


def test_a_staff_token_cannot_read_a_customer_balance_on_the_v1_routes(priced):
    response = _get(priced, "/v1/account/balance", priced.owner_token)

    assert_error(response, 403, "wrong_credential_type")


def test_the_ledger_of_one_account_never_shows_another_accounts_lines(priced, fake_openai):
    alice = customer(priced, credit_micros=CREDIT)
    bob = customer(priced, credit_micros=CREDIT + 1)
    reply = post_chat(priced, bob.key, chat_body())
    request_record(priced, reply.headers["x-request-id"])

    lines = ledger(priced, alice.key)

    assert [line["amount_micros"] for line in lines] == [CREDIT]
    assert balance(priced, alice.key)["balance_micros"] == CREDIT


def test_the_owner_staff_token_works_on_the_admin_api_right_after_bootstrap(tmp_path):
    # Without a projector thread every command that waits for its projection applies it
    # synchronously, so a bootstrap that did not wait (read-your-writes) would fail here
    # every time rather than racing the projector now and then.
    settings = dataclasses.replace(make_settings("sqlite", tmp_path / "data"),
                                   run_projector=False)
    gateway = Gateway(settings)
    gateway.start()
    served = ServedGateway(gateway)
    try:
        response = served.admin("POST", "/admin/accounts",
                                json={"email": f"{uuid.uuid4().hex[:8]}@example.com"})
        assert response.status_code == 201, response.text
    finally:
        served.close()
        close_gateway(gateway, None)


def test_a_key_in_use_shows_when_it_was_last_used(served):
    buyer = customer(served)
    headers = {"Authorization": f"Bearer {buyer.key}"}
    assert served.http.get(f"/v1/keys/{buyer.key_id}", headers=headers).status_code == 200

    deadline = time.monotonic() + 5  # written off the request's path
    while True:
        view = served.http.get(f"/v1/keys/{buyer.key_id}", headers=headers).json()
        if view["last_used_at"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    first = view["last_used_at"]
    assert first is not None
    served.http.get("/v1/account/balance", headers=headers)
    time.sleep(0.2)
    # At most one write per key and minute: the next uses leave it as it was.
    assert served.http.get(f"/v1/keys/{buyer.key_id}", headers=headers).json()[
        "last_used_at"] == first
