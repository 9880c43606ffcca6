"""Public status (8.7) and admin incidents (3.4) over HTTP: 20 consecutive 503s for a pair
show it `down` on GET /v1/status/models/{id} within 60 s (3.2, 8.7); admins open, annotate
and resolve an incident and the status endpoints publish it, without an actor, a host or a
credential; status routes need no credential and refuse a staff token on /v1 (1.4)."""

from __future__ import annotations

import time

from fakes.openai_upstream import Behaviour

from e2e.support import (
    MODEL,
    UPSTREAM_CREDENTIAL,
    assert_error,
    chat_body,
    customer,
    post_chat,
)

SLUG = "fakeup"  # the provider e2e.support.price_model registers
STATUS_WITHIN_S = 60  # 3.2 / 8.7 default


def public(served, path: str, **params):
    response = served.http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_twenty_consecutive_503s_show_the_pair_down_within_60_s(priced, fake_openai):
    who = customer(priced)
    before = public(priced, f"/v1/status/models/{MODEL}")
    assert (before["id"], before["status"]) == (MODEL, "healthy")
    assert [p["provider"] for p in before["providers"]] == [SLUG]
    fake_openai.default = Behaviour(status=503)

    for _ in range(20):
        assert post_chat(priced, who.key, chat_body()).status_code >= 500
    assert priced.gateway.routing.health.wait_idle()
    deadline = time.monotonic() + STATUS_WITHIN_S
    while True:
        after = public(priced, f"/v1/status/models/{MODEL}")
        if after["status"] == "down" or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    assert after["status"] == "down"
    assert [(p["provider"], p["status"]) for p in after["providers"]] == [(SLUG, "down")]
    assert after["providers"][0]["score"] == 0.0 or after["providers"][0]["score"] is None
    listed = {m["id"]: m for m in public(priced, "/v1/status/models")["data"]}
    assert listed[MODEL]["status"] == "down"
    providers = {p["slug"]: p for p in public(priced, "/v1/status/providers")["data"]}
    assert providers[SLUG]["status"] == "down"
    assert public(priced, "/status")["status"] in ("degraded", "down")


def test_an_admin_incident_is_published_annotated_and_resolved(priced):
    opened = priced.admin("POST", "/admin/incidents", json={
        "provider": SLUG, "model": MODEL, "severity": "high",
        "message": "Elevated latency on chat-1."})
    assert opened.status_code == 201, opened.text
    incident = opened.json()
    incident_id = incident["id"]
    assert (incident["status"], incident["severity"], incident["cause"]) == \
        ("open", "high", "manual")
    again = priced.admin("POST", "/admin/incidents", json={
        "provider": SLUG, "model": MODEL, "message": "duplicate"})
    assert again.status_code == 409, again.text

    page = public(priced, "/status")
    assert page["status"] == "degraded"
    assert [i["id"] for i in page["incidents"]] == [incident_id]
    noted = priced.admin("POST", f"/admin/incidents/{incident_id}/notes",
                         json={"text": "Provider confirmed; mitigating."})
    assert noted.status_code == 200, noted.text
    assert noted.json()["notes"][0]["actor"].startswith("staff:")

    shown = public(priced, f"/v1/status/incidents/{incident_id}")
    assert [n["text"] for n in shown["notes"]] == ["Provider confirmed; mitigating."]
    assert "actor" not in shown["notes"][0]
    assert [h["severity"] for h in shown["severity_history"]] == ["high"]
    assert shown["affected_models"] == [MODEL]
    assert [i["id"] for i in public(priced, f"/v1/status/models/{MODEL}")["incidents"]] == \
        [incident_id]

    resolved = priced.admin("POST", f"/admin/incidents/{incident_id}/resolve", json={})
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["resolution"]) == ("resolved", "manual")
    assert resolved.json()["resolved_at"] is not None
    assert public(priced, "/status")["incidents"] == []
    recent = public(priced, "/v1/status/incidents")
    assert [(i["id"], i["status"]) for i in recent["data"]] == [(incident_id, "resolved")]
    assert recent["has_more"] is False


def test_status_routes_validate_and_answer_404(priced):
    assert_error(priced.http.get("/v1/status/incidents/inc_unknown"), 404, "not_found")
    assert_error(priced.http.get("/v1/status/models/acme/no-such-model"), 404,
                 "model_not_found")
    assert_error(priced.http.get("/v1/status/incidents", params={"limit": "0"}), 400,
                 "invalid_request", "limit")
    for body, param in (({"provider": SLUG, "severity": "severe", "message": "x"},
                         "severity"),
                        ({"provider": SLUG, "message": "x" * 2001}, "message"),
                        ({"provider": "nobody", "message": "x"}, "provider")):
        answer = priced.admin("POST", "/admin/incidents", json=body)
        assert answer.status_code in (400, 404), answer.text
        assert answer.json()["error"]["param"] == param
    assert priced.admin("POST", "/admin/incidents/inc_unknown/resolve",
                        json={}).status_code == 404


def test_status_needs_no_credential_and_shows_no_host_or_secret(priced, fake_openai):
    opened = priced.admin("POST", "/admin/incidents", json={
        "provider": "gatewayz", "message": "Billing updates are delayed."})
    assert opened.status_code == 201, opened.text  # a gateway-level incident (8.7)
    bodies = [priced.http.get(path).text for path in (
        "/status", "/v1/status/providers", "/v1/status/models", f"/v1/status/models/{MODEL}",
        "/v1/status/incidents", f"/v1/status/incidents/{opened.json()['id']}")]
    for text in bodies:
        assert fake_openai.base_url not in text
        assert "127.0.0.1" not in text and UPSTREAM_CREDENTIAL not in text
        assert "staff:" not in text and "usr_" not in text
    # A staff token is not an API key: refused on /v1 as everywhere there (1.4), while
    # /status takes no credential at all.
    staff = {"Authorization": f"Bearer {priced.owner_token}"}
    assert_error(priced.http.get("/v1/status/models", headers=staff), 403,
                 "wrong_credential_type")
    assert priced.http.get("/status", headers=staff).status_code == 200
