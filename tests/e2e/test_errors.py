"""Errors on the wire: the OpenAI error shape, the SDK exception class, and no side effects
for anything refused before a provider call (spec 9.8, 1.2, 1.3, 1.5, 1.8, 6.4, 9.1)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import openai
import pytest

from adapters.clock import FrozenClock
from domain.key_format import generate_api_key
from e2e.support import (
    MODEL,
    assert_error,
    balance,
    chat_body,
    customer,
    positions,
    post_chat,
    request_record,
    sdk,
)

MESSAGES = [{"role": "user", "content": "one two three"}]
MIB = 1024 * 1024


def _sdk_error(client: openai.OpenAI, cls: type[openai.APIStatusError], **kwargs):
    with pytest.raises(cls) as caught:
        client.chat.completions.create(**{"model": MODEL, "messages": MESSAGES, **kwargs})
    error = caught.value
    assert isinstance(error.body, dict)
    assert error.body["request_id"] == error.response.headers["x-request-id"]
    return error


def _no_billing_effect(before: dict[str, int], after: dict[str, int]) -> None:
    # No hold, no charge, no change anywhere. The access context is left out: failed
    # authentications may legitimately be recorded there as security events (11.3).
    assert {k: v for k, v in after.items() if k != "access"} == \
        {k: v for k, v in before.items() if k != "access"}


# -- authentication (1.2, 1.3, 1.5) ---------------------------------------------------------

def test_a_request_without_any_credential_is_refused_with_missing_api_key(priced, fake_openai):
    before = positions(priced)

    response = post_chat(priced, None, chat_body())

    assert_error(response, 401, "missing_api_key")
    _no_billing_effect(before, positions(priced))
    assert fake_openai.chat_requests() == []


def test_a_random_string_as_key_is_refused_with_invalid_api_key_by_the_sdk(priced, fake_openai):
    customer(priced)
    before = positions(priced)

    error = _sdk_error(sdk(priced, "not-a-key-" + uuid.uuid4().hex), openai.AuthenticationError)

    assert error.status_code == 401
    assert error.code == "invalid_api_key"
    assert error.type == "invalid_request_error"  # as api.openai.com answers
    _no_billing_effect(before, positions(priced))
    assert fake_openai.chat_requests() == []


def test_a_well_formed_unknown_key_is_refused_exactly_like_a_malformed_one(priced):
    who = customer(priced)
    unknown = generate_api_key("live")
    broken_checksum = who.key[:-1] + ("A" if who.key[-1] != "A" else "B")

    errors = [assert_error(post_chat(priced, key, chat_body()), 401, "invalid_api_key")
              for key in (unknown, broken_checksum, "gw_live_short")]

    assert len({e["message"] for e in errors}) == 1


def test_a_revoked_key_is_refused_with_api_key_revoked(priced, fake_openai):
    who = customer(priced)
    client = sdk(priced, who.key)
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices
    revoked = priced.admin("POST", f"/admin/keys/{who.key_id}/revoke",
                           json={"reason": "leaked in a public repo"})
    assert revoked.status_code == 200, revoked.text
    before = positions(priced)
    calls = len(fake_openai.chat_requests())

    error = _sdk_error(client, openai.AuthenticationError)

    assert error.code == "api_key_revoked"
    _no_billing_effect(before, positions(priced))
    assert len(fake_openai.chat_requests()) == calls


def test_a_key_past_its_expiry_is_refused_with_api_key_expired(priced, fake_openai):
    who = customer(priced, expires_in_days=1)
    client = sdk(priced, who.key)
    now = datetime.now(UTC)
    priced.gateway.access.clock = FrozenClock(now + timedelta(hours=23))
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices
    priced.gateway.access.clock = FrozenClock(now + timedelta(days=1, minutes=1))
    before = positions(priced)
    calls = len(fake_openai.chat_requests())

    error = _sdk_error(client, openai.AuthenticationError)

    assert error.code == "api_key_expired"
    _no_billing_effect(before, positions(priced))
    assert len(fake_openai.chat_requests()) == calls


def test_after_a_rotation_with_no_grace_the_old_secret_is_revoked_and_the_new_one_works(
        priced, fake_openai):
    who = customer(priced)
    rotated = priced.admin("POST", f"/admin/keys/{who.key_id}/rotate", json={"grace_seconds": 0})
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["key"]
    assert new_key != who.key

    error = _sdk_error(sdk(priced, who.key), openai.AuthenticationError)
    reply = sdk(priced, new_key).chat.completions.create(model=MODEL, messages=MESSAGES)

    assert error.code == "api_key_revoked"
    assert reply.choices[0].message.content == "Echo: one two three"
    assert len(fake_openai.chat_requests()) == 1


def test_a_staff_token_on_the_inference_route_is_refused_as_the_wrong_credential_type(
        priced, fake_openai):
    before = positions(priced)

    error = _sdk_error(sdk(priced, priced.owner_token), openai.PermissionDeniedError)

    assert error.status_code == 403
    assert error.code == "wrong_credential_type"
    assert error.type == "permission_error"
    _no_billing_effect(before, positions(priced))
    assert fake_openai.chat_requests() == []


def test_an_api_key_on_an_admin_route_is_refused_as_the_wrong_credential_type(priced):
    who = customer(priced)
    before = positions(priced)

    response = priced.http.post("/admin/accounts", json={"email": "x@example.com"},
                                headers={"Authorization": f"Bearer {who.key}"})

    assert_error(response, 403, "wrong_credential_type")
    _no_billing_effect(before, positions(priced))


def test_two_different_credentials_in_authorization_and_x_api_key_are_ambiguous(priced):
    first, second = customer(priced), customer(priced)

    response = post_chat(priced, first.key, chat_body(), headers={"x-api-key": second.key})

    assert_error(response, 400, "ambiguous_credentials")


def test_a_key_in_the_query_string_is_refused_even_when_the_header_is_valid(priced):
    who = customer(priced)

    response = priced.http.post(f"/v1/chat/completions?api_key={who.key}", json=chat_body(),
                                headers={"Authorization": f"Bearer {who.key}"})

    assert_error(response, 400, "credentials_in_url")


# -- bad input (1.8, 9.1): refused before any hold, with no event at all --------------------

def _nested(depth: int) -> dict:
    """A value that makes the whole request body ``depth`` levels deep (body + metadata)."""
    value: dict = {}
    for _ in range(depth - 2):
        value = {"a": value}
    return value


BAD_BODIES = {
    "malformed json": (b'{"model": "acme/chat-1", "messages": [', 400, "invalid_json", None),
    "invalid utf-8": (b'{"model": "acme/chat-1\xff", "messages": []}', 400, "invalid_json",
                      None),
    "body not an object": (b"[1, 2]", 400, "invalid_request", None),
    "messages not a list": (chat_body(messages="hello"), 400, "invalid_request", "messages"),
    "messages empty": (chat_body(messages=[]), 400, "invalid_request", "messages"),
    "message without a role": (chat_body(messages=[{"content": "x"}]), 400, "invalid_request",
                               "messages[0]"),
    "model missing": ({"messages": MESSAGES}, 400, "invalid_request", "model"),
    "max_tokens a string": (chat_body(max_tokens="x"), 400, "invalid_request", "max_tokens"),
    "max_tokens zero": (chat_body(max_tokens=0), 400, "invalid_request", "max_tokens"),
    "temperature above two": (chat_body(temperature=2.5), 400, "invalid_request",
                              "temperature"),
    "stream a string": (chat_body(stream="yes"), 400, "invalid_request", "stream"),
    "n above 128": (chat_body(n=129), 400, "invalid_request", "n"),
    "json nested 65 levels": (chat_body(metadata=_nested(65)), 400, "invalid_request", None),
    "json nested 5000 levels": (b'{"model": "acme/chat-1", "x": ' + b"[" * 5000 + b"]" * 5000
                                + b"}", 400, "invalid_request", None),
    "unknown model": (chat_body(model="nosuch/model-x"), 404, "model_not_found", "model"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_a_bad_request_body_gets_its_error_code_and_changes_no_event_store(
        priced, fake_openai, case):
    body, status, code, param = BAD_BODIES[case]
    who = customer(priced)
    before = positions(priced)
    money = balance(priced, who.key)

    if isinstance(body, bytes):
        response = post_chat(priced, who.key, content=body)
    else:
        response = post_chat(priced, who.key, body)

    assert_error(response, status, code, param)
    assert positions(priced) == before
    assert fake_openai.chat_requests() == []
    assert balance(priced, who.key) == money


def test_a_body_nested_exactly_64_levels_is_accepted_and_forwarded(priced, fake_openai):
    who = customer(priced)
    body = chat_body(metadata=_nested(64))

    response = post_chat(priced, who.key, body)

    assert response.status_code == 200, response.text
    assert fake_openai.chat_requests()[-1].json["metadata"] == body["metadata"]


def test_openai_parameters_the_gateway_does_not_read_reach_an_openai_upstream(priced,
                                                                              fake_openai):
    """9.10: store, prediction and fields newer than the gateway are the provider's to judge."""
    who = customer(priced)
    prediction = {"type": "content", "content": "x"}

    response = post_chat(priced, who.key, chat_body(store=True, prediction=prediction, foo=1))

    assert response.status_code == 200, response.text
    sent = fake_openai.chat_requests()[-1].json
    assert (sent["store"], sent["prediction"], sent["foo"]) == (True, prediction, 1)


def test_the_sdk_raises_not_found_for_an_unknown_model(priced, fake_openai):
    who = customer(priced)
    before = positions(priced)

    error = _sdk_error(sdk(priced, who.key), openai.NotFoundError, model="nosuch/model-x")

    assert error.code == "model_not_found"
    assert error.type == "not_found_error"
    assert positions(priced) == before


@pytest.mark.parametrize("size", [10 * MIB + 1, 12 * MIB])
def test_a_body_over_ten_mebibytes_is_refused_with_request_too_large(priced, fake_openai, size):
    who = customer(priced)
    before = positions(priced)
    filler = size - len(b'{"model":"acme/chat-1","messages":[{"role":"user","content":""}]}')
    body = (b'{"model":"acme/chat-1","messages":[{"role":"user","content":"'
            + b"a" * filler + b'"}]}')
    assert len(body) == size

    response = post_chat(priced, who.key, content=body)

    assert_error(response, 413, "request_too_large")
    assert positions(priced) == before
    assert fake_openai.chat_requests() == []


def test_a_body_just_under_ten_mebibytes_passes_intake_and_reaches_the_provider(
        priced, fake_openai):
    # The fake upstream itself refuses bodies over 1 MiB with 413, which the gateway must
    # pass back (9.8) without failover or charge: the body got through intake.
    who = customer(priced, credit_micros=50_000_000)
    text = "a " * (5 * MIB - 100)

    response = post_chat(priced, who.key, chat_body(text, max_tokens=5))

    assert_error(response, 413, "request_too_large")
    record = request_record(priced, response.headers["x-request-id"])
    assert record["status"] == "voided" and record["void_reason"] == "rejected"
    assert [a["status"] for a in record["attempts"]] == [413]
    assert balance(priced, who.key)["balance_micros"] == 50_000_000


# -- money (6.4) ----------------------------------------------------------------------------

def test_a_balance_below_the_hold_is_refused_with_402_and_the_provider_is_never_called(
        priced, fake_openai):
    who = customer(priced, credit_micros=100)
    before = positions(priced)

    with pytest.raises(openai.APIStatusError) as caught:
        sdk(priced, who.key).chat.completions.create(model=MODEL, messages=MESSAGES)

    error = caught.value
    assert error.status_code == 402
    assert error.code == "insufficient_credits"
    assert error.type == "billing_error"
    details = error.body["details"]
    # Worst case: ceil(13 bytes / 3) + 8 per message input tokens at 1, 4,096 output at 2.
    assert details == {"available_micros": 100, "required_micros": 5 + 8 + 4096 * 2}
    assert fake_openai.chat_requests() == []
    assert positions(priced) == before
    view = balance(priced, who.key)
    assert view["balance_micros"] == 100 and view["open_holds"] == 0


def test_a_balance_exactly_equal_to_the_hold_is_enough(priced, fake_openai):
    hold = 5 + 8 + 10 * 2
    who = customer(priced, credit_micros=hold)
    short = customer(priced, credit_micros=hold - 1)

    ok = post_chat(priced, who.key, chat_body(max_tokens=10))
    refused = post_chat(priced, short.key, chat_body(max_tokens=10))

    assert ok.status_code == 200, ok.text
    error = assert_error(refused, 402, "insufficient_credits")
    assert error["details"] == {"available_micros": hold - 1, "required_micros": hold}
    assert len(fake_openai.chat_requests()) == 1


# -- routing --------------------------------------------------------------------------------

def test_an_unknown_route_answers_404_in_the_error_shape_with_a_request_id(served):
    response = served.http.get("/v1/no-such-route")

    assert response.status_code == 404
    error = response.json()["error"]
    # As api.openai.com answers a route it does not have.
    assert error["message"] == "Invalid URL (GET /v1/no-such-route)"
    assert (error["type"], error["code"]) == ("invalid_request_error", "not_found")
    assert len(error["request_id"]) == 30
    assert response.headers["request-id"] == error["request_id"]


def test_an_unknown_anthropic_route_answers_404_in_the_anthropic_shape(served):
    response = served.http.post("/v1/messages/batches", json={})

    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert body["request_id"] == response.headers["x-request-id"]


def test_an_unknown_non_api_route_keeps_the_plain_not_found_answer(served):
    error = assert_error(served.http.get("/no-such-page"), 404, "not_found")
    assert error["message"] == "no such route"


def test_a_wrong_method_answers_405_in_the_error_shape_with_a_request_id(served):
    response = served.http.get("/v1/chat/completions")

    assert response.status_code == 405
    body = response.json()
    assert body["error"]["code"] == "method_not_allowed"
    assert body["error"]["request_id"] == response.headers["x-request-id"]
