"""Auditor routes over HTTP (11.6, 11.8, 11.13) and the audit coverage of admin commands."""

from __future__ import annotations

import uuid

from entrypoints.http.app import create_litestar

# Admin writes that record no event of their own, and why.
NOT_EVENTS = {("POST", "/admin/audit/checkpoints"): "signs a checkpoint of the chain itself",
              ("POST", "/admin/health/probes"): "a probe changes no state (3.1): its result "
                                                 "is an operational row"}


def admin_write_routes(gateway) -> set[tuple[str, str]]:
    routes = set()
    for route in create_litestar(gateway).routes:
        if not route.path.startswith("/admin"):
            continue
        for method in getattr(route, "methods", ()):
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                routes.add((method, route.path))
    return routes


def entries_of(served, request_id: str) -> list[dict]:
    served.gateway.projector.run_until_idle()
    response = served.admin("GET", "/audit/entries", params={"request_id": request_id})
    assert response.status_code == 200, response.text
    return response.json()["data"]


REASON = "audit coverage, 10+ characters"


def test_every_admin_command_leaves_an_audit_entry_with_actor_target_and_request_id(served):
    account_id = served.open_account()
    key = served.issue_key(account_id)
    calls = {
        ("POST", "/admin/accounts"): lambda: served.admin(
            "POST", "/admin/accounts", json={"email": "a@example.com", "plan": "dev"}),
        ("POST", "/admin/accounts/{account_id:str}/keys"): lambda: served.admin(
            "POST", f"/admin/accounts/{account_id}/keys", json={"name": "k"}),
        ("POST", "/admin/keys/{key_id:str}/rotate"): lambda: served.admin(
            "POST", f"/admin/keys/{key['id']}/rotate", json={}),
        ("POST", "/admin/keys/{key_id:str}/revoke"): lambda: served.admin(
            "POST", f"/admin/keys/{key['id']}/revoke", json={"reason": "audit coverage"}),
        ("POST", "/admin/credits/grants"): lambda: served.admin(
            "POST", "/admin/credits/grants", headers={"Idempotency-Key": uuid.uuid4().hex},
            json={"account_id": account_id, "amount_micros": 5,
                  "reason": "audit coverage grant"}),
        ("POST", "/admin/providers"): lambda: served.admin(
            "POST", "/admin/providers", json={"slug": "audited", "allow_private": True,
                                              "base_url": "http://127.0.0.1:9/v1",
                                              "credential": "sk-audited-0000"}),
        ("PUT", "/admin/models/{model_path:path}"): lambda: served.admin(
            "PUT", "/admin/models/audited/m1/prices",
            json={"provider": "audited", "prices": {"input": "1", "output": "2"},
                  "context_length": 4096}),
        ("POST", "/admin/models/{model_path:path}"): lambda: served.admin(
            "POST", "/admin/models/audited/m1/maintenance", json={"reason": REASON}),
        ("DELETE", "/admin/models/{model_path:path}"): lambda: served.admin(
            "DELETE", "/admin/models/audited/m1/maintenance"),
        ("PATCH", "/admin/providers/{slug:str}"): lambda: served.admin(
            "PATCH", "/admin/providers/audited", json={"weight": 10}),
        ("POST", "/admin/providers/{slug:str}/credentials"): lambda: served.admin(
            "POST", "/admin/providers/audited/credentials",
            json={"credential": "sk-audited-1111"}),
        ("PUT", "/admin/aliases/{alias:str}"): lambda: served.admin(
            "PUT", "/admin/aliases/audited-alias", json={"target": "audited/m1"}),
        ("DELETE", "/admin/aliases/{alias:str}"): lambda: served.admin(
            "DELETE", "/admin/aliases/audited-alias"),
        ("POST", "/admin/circuit-breakers/{provider:str}/reset"): lambda: served.admin(
            "POST", "/admin/circuit-breakers/audited/reset"),
        ("POST", "/admin/catalog/sync"): lambda: served.admin(
            "POST", "/admin/catalog/sync", json={"provider": "audited"}),
        ("POST", "/admin/incidents"): lambda: served.admin(
            "POST", "/admin/incidents", json={"provider": "audited", "message": REASON}),
        ("POST", "/admin/incidents/{incident_id:str}/notes"): lambda: served.admin(
            "POST", f"/admin/incidents/{incident()}/notes", json={"text": REASON}),
        ("POST", "/admin/incidents/{incident_id:str}/resolve"): lambda: served.admin(
            "POST", f"/admin/incidents/{incident()}/resolve", json={}),
        ("POST", "/admin/providers/{slug:str}/disable"): lambda: served.admin(
            "POST", "/admin/providers/audited/disable", json={"reason": REASON}),
        ("POST", "/admin/providers/{slug:str}/enable"): lambda: served.admin(
            "POST", "/admin/providers/audited/enable", json={"reason": REASON}),
        ("POST", "/admin/accounts/{account_id:str}/erase"): lambda: served.admin(
            "POST", f"/admin/accounts/{served.open_account()}/erase",
            json={"reason": "audit coverage erasure"}),
        ("POST", "/admin/audit/signing-keys/rotate"): lambda: served.admin(
            "POST", "/admin/audit/signing-keys/rotate"),
        ("POST", "/admin/users"): lambda: served.admin(
            "POST", "/admin/users", json={"email": "u@example.com", "role": "admin"}),
        ("POST", "/admin/users/{user_id:str}/role"): lambda: served.admin(
            "POST", f"/admin/users/{staff_user()}/role",
            json={"role": "owner", "reason": REASON}),
        ("POST", "/admin/users/{user_id:str}/permissions"): lambda: served.admin(
            "POST", f"/admin/users/{staff_user()}/permissions",
            json={"permission": "finance:read", "reason": REASON}),
        ("DELETE", "/admin/users/{user_id:str}/permissions/{permission:str}"): lambda: (
            served.admin("DELETE", f"/admin/users/{auditor()}/permissions/audit:read",
                         json={"reason": REASON})),
        ("POST", "/admin/users/{user_id:str}/deactivate"): lambda: served.admin(
            "POST", f"/admin/users/{staff_user()}/deactivate", json={"reason": REASON}),
        ("POST", "/admin/staff-tokens"): lambda: served.admin(
            "POST", "/admin/staff-tokens", json={"user_id": staff_user()}),
        ("DELETE", "/admin/staff-tokens/{token_id:str}"): lambda: served.admin(
            "DELETE", f"/admin/staff-tokens/{staff_token()}"),
        ("PUT", "/admin/accounts/{account_id:str}/restricted"): lambda: served.admin(
            "PUT", f"/admin/accounts/{account_id}/restricted",
            json={"enabled": True, "reason": REASON}),
        ("PUT", "/admin/accounts/{account_id:str}/rate-limits"): lambda: served.admin(
            "PUT", f"/admin/accounts/{served.open_account(plan='enterprise')}/rate-limits",
            json={"rate_limits": {"requests_per_minute": 1000}, "reason": REASON}),
        ("PUT", "/admin/ip-bypass"): lambda: served.admin(
            "PUT", "/admin/ip-bypass", json={"networks": ["192.0.2.0/24"], "reason": REASON}),
    }

    def staff_user() -> str:
        return served.admin("POST", "/admin/users", json={"email": "s@example.com",
                                                           "role": "admin"}).json()["id"]

    def auditor() -> str:
        user_id = staff_user()
        served.admin("POST", f"/admin/users/{user_id}/permissions",
                     json={"permission": "audit:read", "reason": REASON})
        return user_id

    def incident() -> str:
        opened = served.admin("POST", "/admin/incidents", json={
            "provider": "gatewayz", "model": f"gatewayz/m-{uuid.uuid4().hex[:6]}",
            "message": REASON})
        assert opened.status_code == 201, opened.text
        return opened.json()["id"]

    def staff_token() -> str:
        return served.admin("POST", "/admin/staff-tokens",
                            json={"user_id": staff_user()}).json()["id"]

    routes = admin_write_routes(served.gateway)
    untested = routes - set(calls) - set(NOT_EVENTS)
    assert not untested, f"admin routes without an audit coverage case: {sorted(untested)}"

    for route, call in calls.items():
        response = call()
        assert response.status_code < 300, (route, response.text)
        request_id = response.headers["x-request-id"]
        found = entries_of(served, request_id)
        assert found, f"{route} left no audit entry"
        for entry in found:
            assert entry["actor"]["kind"] == "staff", (route, entry)
            assert entry["target"]["id"] and entry["summary"] is not None
            assert entry["request_id"] == request_id


def test_the_event_feed_pages_every_event_once_in_position_order(served):
    for _ in range(3):
        served.open_account(credit_micros=1_000)
    for context in ("accounts", "access", "catalog", "requests"):
        seen, position = [], 1
        while True:
            page = served.admin("GET", "/audit/events", params={
                "context": context, "from_position": position, "limit": 4}).json()
            seen += [event["position"] for event in page["data"]]
            position = page["next_position"]
            if not page["has_more"]:
                break
        assert seen == list(range(1, len(seen) + 1))
    assert served.admin("GET", "/audit/events", params={"limit": 1001}).status_code == 400


def test_verification_streams_keys_schemas_and_projections_are_served(served):
    account_id = served.open_account(credit_micros=2_000)
    served.admin("POST", "/admin/audit/checkpoints")

    verified = served.admin("POST", "/audit/verify")
    stream = served.admin("GET", f"/audit/streams/wallet:{account_id}")
    keys = served.http.get("/audit/public-keys")  # public: no token
    schemas = served.admin("GET", "/audit/schemas").json()["data"]
    status = served.admin("GET", "/audit/projections").json()["data"]
    entry = served.admin("GET", "/audit/entries/1").json()

    assert verified.status_code == 200 and verified.json()["valid"], verified.text
    assert stream.json()["state"]["account_id"] == account_id
    assert [e["type"] for e in stream.json()["events"]][:1] == ["Wallet.Opened"]
    assert keys.status_code == 200 and keys.json()["data"][0]["key_id"] == "k1"
    assert {"Wallet.AdminCreditGranted", "Request.HoldSettled"} <= {s["type"] for s in schemas}
    assert {row["projection"] for row in status} >= {"balances", "audit_trail"}
    assert entry["proof"]["checkpoint"]["seq"] >= 1 and entry["seq"] == 1
    assert served.http.get("/audit/entries").status_code in (401, 403)


def auditor_token(gateway) -> str:
    """A staff user holding only audit:read (issue 9 brings the routes that do this)."""
    from domain.ids import new_id
    from domain.user import User

    user = User(user_id=new_id("usr"), account_id=None, role="user", email_enc="",
                actor="staff:test")
    user.grant_permission("audit:read", "auditor for the access test", "staff:test")
    token = gateway.access._issue_staff_token(user)
    gateway.access.wait("access", gateway.stores.access.save(user)[-1].notification.id)
    return token


def test_an_auditor_reads_the_trail_but_gets_403_on_admin_writes_and_finance(served):
    account_id = served.open_account(credit_micros=1_000)
    headers = {"Authorization": f"Bearer {auditor_token(served.gateway)}"}

    assert served.http.get("/audit/entries", headers=headers).status_code == 200
    assert served.http.get("/audit/events", headers=headers).status_code == 200
    assert served.http.post("/audit/verify", headers=headers).status_code == 403
    for method, path in sorted(admin_write_routes(served.gateway)):
        concrete = path.replace("{account_id:str}", account_id).replace(
            "{key_id:str}", "key_x").replace("{model_path:path}", "m/prices")
        response = served.http.request(method, concrete, headers=headers, json={})
        assert response.status_code == 403, (method, path, response.text)
    for path in (f"/finance/accounts/{account_id}/balance",
                 f"/finance/accounts/{account_id}/statement", "/finance/balances"):
        assert served.http.get(path, headers=headers).status_code == 403, path
