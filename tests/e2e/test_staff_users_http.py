"""Staff users over real HTTP (1.4, 1.5, 12 "Admin: users"): who may change roles, the
audit trail of a refusal, demotion and deactivation reaching the tokens, tokens shown once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from conftest import ServedGateway, close_gateway, open_gateway

from e2e.support import assert_error
from entrypoints.http import admin_users

REASON = "needed for an automated test"


@pytest.fixture
def served(tmp_path, monkeypatch) -> Iterator[ServedGateway]:
    """The embedded gateway behind a real server, with the /admin/users routes registered
    even while app.py does not list them yet (then this adds nothing)."""
    from entrypoints.http import app as app_module

    build = app_module.create_litestar

    def with_user_routes(gateway):
        app = build(gateway)
        if "/admin/users" not in {route.path for route in app.routes}:
            for handler in admin_users.ROUTES:
                app.register(handler)
        return app

    monkeypatch.setattr(app_module, "create_litestar", with_user_routes)
    gw, schema = open_gateway("sqlite", tmp_path)
    served = ServedGateway(gw)
    yield served
    served.close()
    close_gateway(gw, schema)


def call(served, token: str, method: str, path: str, **kwargs):
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return served.http.request(method, path, headers=headers, **kwargs)


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def add(served, role: str, **body) -> str:
    return ok(served.admin("POST", "/admin/users", json={
        "email": f"{role}.{uuid.uuid4().hex[:6]}@example.com", "role": role, **body}), 201)["id"]


def token_for(served, user_id: str) -> str:
    return ok(served.admin("POST", "/admin/staff-tokens", json={"user_id": user_id}),
              201)["token"]


def audit_rows(served, event_type: str) -> list[tuple]:
    """Audit entries of one event type, once every recorded event has been projected."""
    gw = served.gateway
    assert gw.security.wait_idle()
    assert gw.projector.wait_for("access", gw.stores.access.recorder.max_notification_id())
    with gw.db.transaction() as cur:
        cur.execute("SELECT actor_kind, actor_id FROM audit_entries WHERE event_type = %s",
                    (event_type,))
        return cur.fetchall()


def test_an_admin_granting_admin_gets_403_and_one_audit_entry_an_owner_200_and_one_event(
        served):
    admin_id = add(served, "admin")
    admin = token_for(served, admin_id)
    target = add(served, "developer")

    denied = call(served, admin, "POST", f"/admin/users/{target}/role",
                  json={"role": "admin", "reason": REASON})

    assert_error(denied, 403, "forbidden")
    assert audit_rows(served, "Security.AccessDenied") == [("staff", admin_id)]
    with served.gateway.db.transaction() as cur:
        cur.execute("SELECT principal_id, permission, route FROM security_events")
        assert cur.fetchall() == [(admin_id, "owner", "POST /admin/users/{user_id}/role")]
    assert audit_rows(served, "User.RoleChanged") == []
    granted = served.admin("POST", f"/admin/users/{target}/role",
                           json={"role": "admin", "reason": REASON})
    assert ok(granted)["role"] == "admin"
    owner_id = served.gateway.access.authenticate_staff(served.owner_token).user_id
    assert audit_rows(served, "User.RoleChanged") == [("staff", owner_id)]
    assert len(audit_rows(served, "Security.AccessDenied")) == 1
    assert ok(served.admin("GET", f"/admin/users/{target}"))["role"] == "admin"


def test_an_admin_manages_customer_users_of_an_account(served):
    admin = token_for(served, add(served, "admin"))
    account_id = served.open_account()

    user = ok(call(served, admin, "POST", "/admin/users", json={
        "account_id": account_id, "email": "dev@example.com", "role": "user"}), 201)
    promoted = call(served, admin, "POST", f"/admin/users/{user['id']}/role",
                    json={"role": "developer", "reason": REASON})

    assert ok(promoted)["role"] == "developer" and promoted.json()["account_id"] == account_id
    assert_error(call(served, admin, "POST", "/admin/users", json={
        "email": "x@example.com", "role": "owner"}), 403, "forbidden")
    assert_error(call(served, admin, "POST", "/admin/users", json={
        "account_id": "acct_missing", "email": "x@example.com"}), 404, "not_found")
    assert_error(call(served, admin, "POST", f"/admin/users/{user['id']}/role",
                      json={"role": "user", "reason": "short"}), 400, "invalid_request",
                 param="reason")
    assert_error(call(served, admin, "GET", "/admin/users/usr_missing"), 404, "not_found")


def test_a_demoted_admin_gets_403_on_admin_routes_one_second_later(served):
    admin_id = add(served, "admin")
    admin = token_for(served, admin_id)
    assert ok(call(served, admin, "GET", f"/admin/users/{admin_id}"))["role"] == "admin"

    ok(served.admin("POST", f"/admin/users/{admin_id}/role",
                    json={"role": "developer", "reason": "moved to the product team"}))
    time.sleep(1.0)

    assert_error(call(served, admin, "GET", f"/admin/users/{admin_id}"), 403, "forbidden")
    assert_error(call(served, admin, "POST", "/admin/accounts",
                      json={"email": "a@example.com", "plan": "dev"}), 403, "forbidden")


def test_deactivation_stops_the_users_tokens(served):
    admin_id = add(served, "admin")
    first, second = token_for(served, admin_id), token_for(served, admin_id)
    assert call(served, first, "GET", f"/admin/users/{admin_id}").status_code == 200

    view = ok(served.admin("POST", f"/admin/users/{admin_id}/deactivate",
                           json={"reason": "left the company on friday"}))

    assert view["active"] is False
    for token in (first, second):
        assert_error(call(served, token, "GET", f"/admin/users/{admin_id}"), 401,
                     "invalid_api_key")
    shown = ok(served.admin("GET", f"/admin/users/{admin_id}"))
    assert [t["status"] for t in shown["staff_tokens"]] == ["inactive", "inactive"]
    assert_error(served.admin("POST", "/admin/staff-tokens", json={"user_id": admin_id}),
                 409, "conflict")


def test_a_staff_token_is_shown_once_redacted_on_replay_and_revocable(served):
    admin_id = add(served, "admin")
    admin = token_for(served, admin_id)
    key = {"Idempotency-Key": uuid.uuid4().hex}

    issued = ok(call(served, admin, "POST", "/admin/staff-tokens",
                     json={"expires_in_days": 7}, headers=key), 201)
    replay = ok(call(served, admin, "POST", "/admin/staff-tokens",
                     json={"expires_in_days": 7}, headers=key), 201)

    assert issued["token"].startswith("gw_staff_") and issued["user_id"] == admin_id
    assert replay["id"] == issued["id"] and replay["token"] is None
    assert replay["token_redacted"] is True
    assert issued["token"] not in served.admin("GET", f"/admin/users/{admin_id}").text
    assert_error(call(served, admin, "POST", "/admin/staff-tokens",
                      json={"user_id": add(served, "admin")}), 403, "forbidden")
    assert_error(call(served, admin, "POST", "/admin/staff-tokens",
                      json={"expires_in_days": 91}), 400, "invalid_request",
                 param="expires_in_days")
    revoked = call(served, admin, "DELETE", f"/admin/staff-tokens/{issued['id']}")
    assert ok(revoked)["status"] == "revoked"
    assert_error(call(served, issued["token"], "GET", f"/admin/users/{admin_id}"), 401,
                 "invalid_api_key")
    assert call(served, admin, "GET", f"/admin/users/{admin_id}").status_code == 200


def test_permissions_are_granted_and_revoked_by_an_owner_only(served):
    admin = token_for(served, add(served, "admin"))
    auditor_id = add(served, "user")
    grant = {"permission": "audit:read", "reason": REASON}

    assert_error(call(served, admin, "POST", f"/admin/users/{auditor_id}/permissions",
                      json=grant), 403, "forbidden")
    assert ok(served.admin("POST", f"/admin/users/{auditor_id}/permissions",
                           json=grant))["permissions"] == ["audit:read"]
    auditor = token_for(served, auditor_id)
    assert call(served, auditor, "GET", "/audit/entries").status_code == 200
    assert_error(call(served, auditor, "GET", f"/admin/users/{auditor_id}"), 403, "forbidden")

    revoked = served.admin("DELETE", f"/admin/users/{auditor_id}/permissions/audit:read",
                           params={"reason": "audit engagement is over"})

    assert ok(revoked)["permissions"] == []
    assert_error(call(served, auditor, "GET", "/audit/entries"), 403, "forbidden")


def test_the_last_owner_cannot_demote_or_deactivate_themself(served):
    owner_id = served.gateway.access.authenticate_staff(served.owner_token).user_id

    assert_error(served.admin("POST", f"/admin/users/{owner_id}/role",
                              json={"role": "admin", "reason": REASON}), 409, "last_owner")
    assert_error(served.admin("POST", f"/admin/users/{owner_id}/deactivate",
                              json={"reason": REASON}), 409, "last_owner")
    assert ok(served.admin("GET", f"/admin/users/{owner_id}"))["role"] == "owner"
