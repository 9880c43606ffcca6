"""Self-service key management over real HTTP (spec 1.1, 1.3, 1.4): a key holder creates,
reads, changes, rotates and revokes its own account's keys through /v1/keys*, within its own
scopes, and never sees or touches another account's keys."""

from __future__ import annotations

import re
import threading
import uuid

import httpx
import pytest

from domain.api_key import ApiKey
from e2e.support import assert_error, customer, positions

KEY_PATTERN = re.compile(r"^gw_(live|test)_[A-Za-z0-9_-]{43}_[0-9A-Za-z]{6}$")
UNKNOWN_ID = "key_01ZZZZZZZZZZZZZZZZZZZZZZZZ"


def _call(served, method: str, path: str, key: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
    return served.http.request(method, path, headers=headers, **kwargs)


def _create(served, key: str, **body) -> httpx.Response:
    return _call(served, "POST", "/v1/keys", key,
                 json={"name": f"k-{uuid.uuid4().hex[:8]}", **body})


def _balance(served, key: str) -> httpx.Response:
    return _call(served, "GET", "/v1/account/balance", key)


def _key_events(served, key_id: str) -> list[str]:
    """Names of the events in one key's stream, in order."""
    app = served.gateway.stores.access
    wanted = ApiKey.create_id(key_id)
    events = (app.mapper.to_domain_event(note)
              for note in app.recorder.select_notifications(start=1, limit=100_000))
    return [type(event).__name__ for event in events if event.originator_id == wanted]


def test_a_created_key_is_shown_once_and_then_only_as_its_prefix_and_last4(served):
    master = customer(served, scopes=["*"])

    created = _create(served, master.key, scopes=["*"])

    assert created.status_code == 201, created.text
    secret, key_id = created.json()["key"], created.json()["id"]
    assert KEY_PATTERN.match(secret) and len(secret) == 58
    shown = _call(served, "GET", f"/v1/keys/{key_id}", master.key)
    listed = _call(served, "GET", "/v1/keys", master.key)
    assert shown.status_code == listed.status_code == 200
    view = shown.json()
    assert (view["prefix"], view["last4"]) == (secret[:12], secret[-4:])
    assert len(view["prefix"]) == 12 and "key" not in view
    for body in (shown.text, listed.text):
        assert secret not in body and secret[12:-4] not in body
    assert _balance(served, secret).status_code == 200  # the secret shown once works


@pytest.mark.parametrize("wanted", [["inference:use"], ["*"]])
def test_a_key_cannot_create_a_key_with_scopes_beyond_its_own(served, wanted):
    manager = customer(served, scopes=["keys:write", "keys:read"])
    before = positions(served)

    refused = _create(served, manager.key, scopes=wanted)

    assert_error(refused, 403, "insufficient_scope")
    assert positions(served) == before


def test_a_key_name_is_unique_per_account_ignoring_case(served):
    master = customer(served)
    assert _create(served, master.key, name="Prod").status_code == 201
    before = positions(served)

    again = _create(served, master.key, name="prod")

    assert_error(again, 409, "key_name_taken", param="name")
    assert positions(served) == before


def _eleven_creations(served) -> httpx.Response:
    master = customer(served)
    for _ in range(10):
        created = _create(served, master.key)
        assert created.status_code == 201, created.text
    return _create(served, master.key)


def test_the_eleventh_key_creation_within_an_hour_is_refused_429_with_retry_after(served):
    eleventh = _eleven_creations(served)

    assert_error(eleventh, 429, "rate_limit_exceeded")
    assert int(eleventh.headers["retry-after"]) >= 1


def test_the_retry_after_of_the_creation_limit_is_the_real_wait(served):
    eleventh = _eleven_creations(served)

    # The oldest of the ten was created moments ago: about an hour to wait, never 1 s.
    assert 3500 <= int(eleventh.headers["retry-after"]) <= 3601


def test_another_accounts_key_id_answers_exactly_as_an_unknown_id(served):
    alice, bob = customer(served), customer(served)

    def answers(key_id: str) -> list[tuple[int, dict]]:
        calls = [("GET", f"/v1/keys/{key_id}", None),
                 ("PATCH", f"/v1/keys/{key_id}", {"name": "taken-over"}),
                 ("POST", f"/v1/keys/{key_id}/rotate", {"grace_seconds": 0}),
                 ("DELETE", f"/v1/keys/{key_id}", None)]
        out = []
        for method, path, body in calls:
            response = _call(served, method, path, alice.key, json=body)
            error = assert_error(response, 404, "not_found")
            error.pop("request_id")
            out.append((response.status_code, response.json() | {"error": error}))
        return out

    assert answers(bob.key_id) == answers(UNKNOWN_ID)
    assert _balance(served, bob.key).status_code == 200  # neither rotated nor revoked
    assert _key_events(served, bob.key_id) == ["Issued"]


def test_an_invalid_ip_allowlist_entry_is_refused_and_the_key_is_unchanged(served):
    master = customer(served)
    target = served.issue_key(master.account_id, ip_allowlist=["10.0.0.0/24"])
    before = positions(served)

    refused = _call(served, "PATCH", f"/v1/keys/{target['id']}", master.key,
                    json={"ip_allowlist": ["127.0.0.1", "10.0.0.0/33"]})

    error = assert_error(refused, 400, "invalid_ip_allowlist", param="ip_allowlist")
    assert "10.0.0.0/33" in error["message"]
    view = _call(served, "GET", f"/v1/keys/{target['id']}", master.key).json()
    assert view["ip_allowlist"] == ["10.0.0.0/24"]
    assert positions(served) == before


@pytest.mark.parametrize("field, value", [
    ("account_id", "acct_01ZZZZZZZZZZZZZZZZZZZZZZZZ"), ("prefix", "gw_live_AAAA"),
    ("requests_used", 0), ("environment", "test"), ("hash", "00" * 32),
    ("created_by", "staff:someone")])
def test_a_patch_of_a_field_that_is_not_writable_is_refused_naming_it(served, field, value):
    master = customer(served)
    before = positions(served)

    refused = _call(served, "PATCH", f"/v1/keys/{master.key_id}", master.key,
                    json={field: value})

    assert_error(refused, 400, "invalid_request", param=field)
    assert positions(served) == before
    view = _call(served, "GET", f"/v1/keys/{master.key_id}", master.key).json()
    assert (view["account_id"], view["environment"]) == (master.account_id, "live")


def test_a_rotation_without_grace_ends_the_old_secret_at_once(served):
    master = customer(served)

    rotated = _call(served, "POST", f"/v1/keys/{master.key_id}/rotate", master.key,
                    json={"grace_seconds": 0})

    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["key"]
    assert KEY_PATTERN.match(new) and rotated.json()["id"] == master.key_id
    assert_error(_balance(served, master.key), 401, "api_key_revoked")
    assert _balance(served, new).status_code == 200


def test_a_grace_period_above_a_week_is_refused(served):
    master = customer(served)
    before = positions(served)

    refused = _call(served, "POST", f"/v1/keys/{master.key_id}/rotate", master.key,
                    json={"grace_seconds": 604_801})

    assert_error(refused, 400, "invalid_request", param="grace_seconds")
    assert positions(served) == before
    assert _balance(served, master.key).status_code == 200


def test_a_deleted_key_is_refused_right_after_the_response(served):
    master = customer(served)
    doomed = served.issue_key(master.account_id)
    assert _balance(served, doomed["key"]).status_code == 200  # cached as valid

    deleted = _call(served, "DELETE", f"/v1/keys/{doomed['id']}", master.key)

    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "revoked"
    assert_error(_balance(served, doomed["key"]), 401, "api_key_revoked")


def test_concurrent_rotations_with_one_idempotency_key_rotate_once(served):
    master = customer(served)
    target = served.issue_key(master.account_id)
    idem = uuid.uuid4().hex
    start = threading.Barrier(16)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def rotate() -> None:
        with httpx.Client(base_url=served.url, timeout=30) as client:
            start.wait()
            answer = client.post(f"/v1/keys/{target['id']}/rotate", json={"grace_seconds": 60},
                                 headers={"Authorization": f"Bearer {master.key}",
                                          "Idempotency-Key": idem})
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=rotate) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(answers) == 16
    assert _key_events(served, target["id"]).count("Rotated") == 1
    ok = [a for a in answers if a.status_code == 200]
    busy = [a for a in answers if a.status_code != 200]
    for answer in busy:
        assert_error(answer, 409, "idempotency_in_progress")
    # The secret is shown once (1.1): the first answer carries it, replays carry null.
    secrets = {a.json()["key"] for a in ok} - {None}
    assert len(secrets) == 1 and len(ok) >= 1
    assert all(a.json()["key_redacted"] for a in ok if a.json()["key"] is None)
    assert {a.json()["id"] for a in ok} == {target["id"]}
    assert _balance(served, secrets.pop()).status_code == 200
