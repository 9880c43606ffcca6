"""Active probes over HTTP (3.1, 8.7): an admin probes a pair now (POST /admin/health/probes)
with the platform's provider credential; the probe leaves no trace in any account (no request
event, no usage row); the public uptime route (GET /v1/status/uptime/{model_id}) shows the
recorded probes per provider, with no host or credential, and checks a presented key as the
other /v1 status routes do."""

from __future__ import annotations

from fakes.openai_upstream import Behaviour

from e2e.support import MODEL, NATIVE, UPSTREAM_CREDENTIAL, assert_error, customer, positions

SLUG = "fakeup"  # the provider e2e.support.price_model registers
UPTIME = f"/v1/status/uptime/{MODEL}"


def probe(served, **body):
    return served.admin("POST", "/admin/health/probes", json=body)


def request_rows(served) -> int:
    with served.gateway.db.transaction() as cur:
        cur.execute("SELECT COUNT(*) FROM requests")
        return cur.fetchone()[0]


def test_an_admin_probe_is_recorded_for_uptime_and_in_no_account(priced, fake_openai):
    who = customer(priced)  # an account exists; the probe must not touch it
    before = positions(priced)
    priced.gateway.prober.retry_base_s = 0  # the 1 s / 2 s / 4 s backoff, without the wait

    answer = probe(priced, provider=SLUG, model=MODEL)
    assert answer.status_code == 200, answer.text
    ok = answer.json()
    assert (ok["object"], ok["provider"], ok["model"], ok["ok"], ok["status"],
            ok["attempts"], ok["error_class"]) == ("probe_result", SLUG, MODEL, True, 200, 1,
                                                   None)
    [sent] = fake_openai.chat_requests()
    # A minimal request (on-demand tier: 5 tokens) on the operator's own credential.
    assert sent.json == {"model": NATIVE, "messages": [{"role": "user", "content": "ping"}],
                         "max_tokens": 5}
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_CREDENTIAL}"
    assert who.key not in str(sent.headers)

    fake_openai.default = Behaviour(status=503)
    failed = probe(priced, provider=SLUG, model=MODEL).json()
    assert (failed["ok"], failed["status"], failed["attempts"], failed["error_class"]) == \
        (False, 503, 4, "server_error")  # retried 3 times, then recorded once

    # 3.1: charged to the operator, never to a customer: no request event, no usage row.
    assert positions(priced) == before
    assert request_rows(priced) == 0

    shown = priced.http.get(UPTIME)
    assert shown.status_code == 200, shown.text
    uptime = shown.json()
    assert (uptime["object"], uptime["id"]) == ("model_uptime", MODEL)
    [row] = uptime["providers"]
    assert row["provider"] == SLUG
    assert row["uptime"] == {"24h": 50.0, "7d": 50.0, "30d": 50.0}
    assert row["probes"] == {"24h": 2, "7d": 2, "30d": 2}
    assert uptime["uptime"] == row["uptime"]
    assert len(row["daily"]) == 90
    assert (row["daily"][-1]["probes"], row["daily"][-1]["uptime"]) == (2, 50.0)
    assert uptime["daily"][-1]["uptime"] == 50.0
    text = shown.text
    assert fake_openai.base_url not in text and "127.0.0.1" not in text
    assert UPSTREAM_CREDENTIAL not in text and who.account_id not in text


def test_the_uptime_route_is_public_and_checks_a_presented_key(priced):
    assert priced.http.get(UPTIME).json()["providers"][0]["uptime"]["24h"] is None
    assert_error(priced.http.get("/v1/status/uptime/acme/no-such-model"), 404,
                 "model_not_found")
    staff = {"Authorization": f"Bearer {priced.owner_token}"}
    assert_error(priced.http.get(UPTIME, headers=staff), 403, "wrong_credential_type")
    who = customer(priced)
    good = priced.http.get(UPTIME, headers={"Authorization": f"Bearer {who.key}"})
    assert good.status_code == 200, good.text


def test_the_admin_probe_route_needs_an_admin_and_a_served_pair(priced, fake_openai):
    assert priced.http.post("/admin/health/probes",
                            json={"provider": SLUG, "model": MODEL}).status_code == 401
    for body, status, param in (({"model": MODEL}, 400, "provider"),
                                ({"provider": SLUG}, 400, "model"),
                                ({"provider": "nobody", "model": MODEL}, 404, "provider"),
                                ({"provider": SLUG, "model": "acme/no-such"}, 404, "model")):
        answer = probe(priced, **body)
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["param"] == param
    assert fake_openai.chat_requests() == []
