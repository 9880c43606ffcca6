"""Security events (11.3) through the served app: failed keys counted per IP and minute, denied
staff calls, misused keys, GET /audit/security-events, and recording that cannot fail a call."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from adapters.clock import FrozenClock
from adapters.secret_box import SecretBox
from domain.ids import new_id
from domain.key_format import display_prefix, generate_api_key, generate_staff_token, last4
from domain.key_format import secret_hash as hmac_of
from domain.user import User
from e2e.support import assert_error, chat_body, customer

MASTER = bytes(range(32))  # the master key conftest gives every test gateway


def staff(served, role: str = "admin", permissions: tuple[str, ...] = ()) -> tuple[str, str]:
    """A staff user of ``role`` holding only ``permissions``, and a token of theirs."""
    gw = served.gateway
    user_id = new_id("usr")
    user = User(user_id=user_id, account_id=None, role=role,
                email_enc=SecretBox(MASTER).encrypt("staff@example.com"), actor="test")
    for permission in permissions:
        user.grant_permission(permission, "granted for an automated test", "test")
    token = generate_staff_token()
    user.issue_staff_token(new_id("stk"), display_prefix(token), last4(token),
                           hmac_of(gw.access.pepper, token),
                           (datetime.now(UTC) + timedelta(days=1)).isoformat())
    assert gw.projector.wait_for("access", gw.stores.access.save(user)[-1].notification.id)
    return user_id, token


def recorded(served) -> list:
    """Every Security event in the store, once the recorder has written what it was given."""
    gw = served.gateway
    assert gw.security.wait_idle()
    app = gw.stores.access
    return [app.mapper.to_domain_event(n)
            for n in app.recorder.select_notifications(start=1, limit=100_000)
            if n.topic.startswith("domain.security:")]


def of_type(events: list, name: str) -> list:
    return [e for e in events if type(e).__name__ == name]


def listed(served, token: str | None = None, **params) -> dict:
    """GET /audit/security-events once the projector has caught up with the recorder."""
    gw = served.gateway
    assert gw.security.wait_idle()
    assert gw.projector.wait_for("access", gw.stores.access.recorder.max_notification_id())
    response = served.http.get("/audit/security-events", params=params, headers={
        "Authorization": f"Bearer {token or served.owner_token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    return body


def get(served, path: str, key: str):
    return served.http.get(path, headers={"Authorization": f"Bearer {key}"})


def test_100_bad_keys_from_one_ip_in_one_minute_make_at_most_two_events_summing_to_100(served):
    gw = served.gateway
    clock = FrozenClock(datetime.now(UTC).replace(second=5, microsecond=0))
    gw.security.clock = clock  # the minute ends when the test says so
    bad = generate_api_key("live")  # well formed, checksum valid, unknown

    for _ in range(100):
        assert_error(get(served, "/v1/account/balance", bad), 401, "invalid_api_key")

    assert [e.count for e in of_type(recorded(served), "AuthenticationFailed")] == [1]
    clock.advance(60)
    deadline = time.monotonic() + 15  # the background flush picks up the ended minute
    while sum(e.count for e in of_type(recorded(served), "AuthenticationFailed")) < 100:
        assert time.monotonic() < deadline, "the minute's count was never flushed"
        time.sleep(0.1)
    events = of_type(recorded(served), "AuthenticationFailed")
    assert len(events) == 2 and sum(e.count for e in events) == 100
    assert {(e.reason, e.key_prefix, e.route) for e in events} == \
        {("unknown", bad[:12], "GET /v1/account/balance")}
    assert {SecretBox(MASTER).decrypt(e.client_ip_enc) for e in events} == {"127.0.0.1"}

    stored = b"\n".join(n.state for app in gw.stores.by_context().values()
                        for n in app.recorder.select_notifications(start=1, limit=100_000))
    assert bad.encode() not in stored
    security_rows = b"\n".join(n.state for n in gw.stores.access.recorder.select_notifications(
        start=1, limit=100_000) if n.topic.startswith("domain.security:"))
    assert b"127.0.0.1" not in security_rows
    body = listed(served, kind="authentication_failed")
    assert sum(row["count"] for row in body["data"]) == 100
    assert bad not in str(body) and "127.0.0.1" not in str(body)


def test_a_denied_staff_call_makes_exactly_one_access_denied_and_the_route_needs_audit_read(
        served):
    admin_id, admin_token = staff(served, "admin")
    account = served.open_account()

    response = get(served, f"/finance/accounts/{account}/balance", admin_token)

    assert_error(response, 403, "forbidden")
    denied = of_type(recorded(served), "AccessDenied")
    assert [(e.principal_kind, e.principal_id, e.credential_kind, e.permission, e.route,
             e.reason, e.count) for e in denied] == \
        [("staff", admin_id, "staff_token", "finance:read",
          "GET /finance/accounts/{account_id}/balance", "missing_permission", 1)]
    assert SecretBox(MASTER).decrypt(denied[0].client_ip_enc) == "127.0.0.1"
    gw = served.gateway
    assert gw.projector.wait_for("access", gw.stores.access.recorder.max_notification_id())
    with gw.db.transaction() as cur:  # and one audit entry (11.6), naming the staff user
        cur.execute("SELECT actor_kind, actor_id, target_type FROM audit_entries "
                    "WHERE event_type = 'Security.AccessDenied'")
        assert cur.fetchall() == [("staff", admin_id, "security")]

    assert_error(get(served, "/audit/security-events", admin_token), 403, "forbidden")
    key = served.issue_key(account)["key"]
    assert_error(get(served, "/audit/security-events", key), 403, "wrong_credential_type")
    _, auditor = staff(served, "user", ("audit:read",))
    body = listed(served, auditor, kind="access_denied")
    assert [(r["reason"], r["permission"], r["principal"]) for r in body["data"]] == [
        ("wrong_credential_type", "audit:read", {"kind": "api_key", "id": None}),
        ("missing_permission", "audit:read", {"kind": "staff", "id": admin_id}),
        ("missing_permission", "finance:read", {"kind": "staff", "id": admin_id})]
    assert body["data"][0]["key_prefix"] == key[:12]
    assert body["has_more"] is False
    bad_kind = served.http.get("/audit/security-events", params={"kind": "nope"},
                               headers={"Authorization": f"Bearer {auditor}"})
    assert_error(bad_kind, 400, "invalid_request", param="kind")


def test_misused_keys_are_recorded_and_listed_per_account(served):
    served.gateway.security.clock = FrozenClock(datetime.now(UTC).replace(second=5))
    revoked = customer(served)
    response = served.admin("POST", f"/admin/keys/{revoked.key_id}/revoke",
                            json={"reason": "leaked in a public repository"})
    assert response.status_code == 200, response.text
    scoped = customer(served, scopes=["models:read"])

    assert_error(get(served, "/v1/account/balance", revoked.key), 401, "api_key_revoked")
    assert_error(get(served, "/v1/account/balance", scoped.key), 403, "insufficient_scope")
    echo = served.http.post("/v1/chat/completions", json=chat_body(model="gatewayz/echo"),
                            headers={"Authorization": f"Bearer {revoked.key}"})
    assert_error(echo, 401, "api_key_revoked")  # refused before any model check
    live = customer(served)
    echo = served.http.post("/v1/chat/completions", json=chat_body(model="gatewayz/echo"),
                            headers={"Authorization": f"Bearer {live.key}"})
    assert_error(echo, 403, "model_not_allowed")

    misuse = {(e.key_id, e.account_id, e.kind, e.route, e.count)
              for e in of_type(recorded(served), "KeyMisuse")}
    assert misuse == {
        (revoked.key_id, revoked.account_id, "revoked_key_used", "GET /v1/account/balance", 1),
        (scoped.key_id, scoped.account_id, "scope_violation", "GET /v1/account/balance", 1),
        (live.key_id, live.account_id, "model_not_allowed", "POST /v1/chat/completions", 1)}
    rows = listed(served, account_id=revoked.account_id)["data"]
    # Two revoked uses in one minute: the first recorded, the second counted for later.
    assert [(r["kind"], r["reason"], r["count"]) for r in rows] == \
        [("key_misuse", "revoked_key_used", 1)]
    served.gateway.security.flush(everything=True)
    rows = listed(served, account_id=revoked.account_id, limit="1")
    assert rows["has_more"] and len(rows["data"]) == 1
    rest = listed(served, account_id=revoked.account_id, cursor=rows["next_cursor"])
    assert [(r["reason"], r["route"], r["count"]) for r in rows["data"] + rest["data"]] == [
        ("revoked_key_used", "POST /v1/chat/completions", 1),  # the counted rest, newest
        ("revoked_key_used", "GET /v1/account/balance", 1)]
    assert rest["has_more"] is False
    assert not listed(served, account_id=live.account_id, to="2000-01-01T00:00:00Z")["data"]


def test_a_recorder_that_cannot_record_changes_no_response(served, monkeypatch):
    gw = served.gateway
    who = customer(served)
    served.admin("POST", f"/admin/keys/{who.key_id}/revoke", json={"reason": "rotated out"})
    _, admin_token = staff(served, "admin")

    def broken(*_, **__):
        raise RuntimeError("the event store is away")

    monkeypatch.setattr(gw.stores.access, "save", broken)
    assert_error(get(served, "/v1/account/balance", "garbage"), 401, "invalid_api_key")
    assert_error(get(served, "/v1/account/balance", who.key), 401, "api_key_revoked")
    assert_error(served.http.get("/v1/account/balance"), 401, "missing_api_key")
    assert gw.security.wait_idle() and gw.security.failures >= 3

    monkeypatch.setattr(gw.security, "_count", broken)
    monkeypatch.setattr(gw.security, "_enqueue", broken)
    assert_error(get(served, "/v1/account/balance", "garbage"), 401, "invalid_api_key")
    assert_error(get(served, f"/finance/accounts/{who.account_id}/balance", admin_token),
                 403, "forbidden")
    assert gw.security.failures >= 5
