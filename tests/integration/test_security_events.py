"""Security events (11.3) at the service level: counting per IP and minute on a controllable
clock, bounded memory, key misuse, the read model, and failures that never reach the caller."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import close_gateway, open_gateway

from adapters.clock import FrozenClock
from adapters.secret_box import SecretBox
from application.access import AuthError
from application.security_events import Origin, SecurityRecorder
from domain.key_format import generate_api_key
from domain.security import Security
from projections.ledger_queries import PageRequest
from projections.security import SecurityQueries

ROUTE = "POST /v1/chat/completions"
IP = "203.0.113.7"
MASTER = bytes(range(32))  # the master key conftest gives every test gateway


@pytest.fixture
def gw(tmp_path: Path) -> Iterator:
    """One gateway on the in-memory event store (the counting logic is backend-free)."""
    gateway, schema = open_gateway("memory", tmp_path)
    yield gateway
    close_gateway(gateway, schema)


def recorder(gateway, clock, **kwargs) -> SecurityRecorder:
    """A recorder of its own, on ``clock``, whose background flush never fires by itself."""
    rec = SecurityRecorder(gateway.stores.access, SecretBox(MASTER), clock,
                           gateway.access.pepper, gateway.access_queries.key_by_hash,
                           flush_interval=3600, **kwargs)
    rec.start()
    return rec


def minute_start() -> FrozenClock:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return FrozenClock(now)


def security_events(gateway) -> list:
    app = gateway.stores.access
    notes = app.recorder.select_notifications(start=1, limit=100_000)
    return [app.mapper.to_domain_event(n) for n in notes
            if n.topic.startswith("domain.security:")]


def raw_events(gateway) -> bytes:
    """Every stored event body of every context, as written."""
    return b"\n".join(n.state for app in gateway.stores.by_context().values()
                      for n in app.recorder.select_notifications(start=1, limit=100_000))


def of_type(events: list, name: str) -> list:
    return [e for e in events if type(e).__name__ == name]


def test_100_failures_of_one_ip_in_one_minute_make_at_most_two_events_summing_to_100(gw):
    clock = minute_start()
    clock.advance(10)
    rec = recorder(gw, clock)
    bad = [f"not-a-key-{n}" for n in range(100)]
    for n, presented in enumerate(bad):
        rec.refused("invalid_api_key", presented, "inference:use", Origin(ROUTE, IP))
        if n == 49:
            clock.advance(20)  # still the same minute
    assert rec.wait_idle()
    first = of_type(security_events(gw), "AuthenticationFailed")
    assert [(e.count, e.reason) for e in first] == [(1, "malformed")]  # recorded at once
    assert rec.flush() == 0  # the minute has not ended: nothing more yet

    clock.advance(31)
    assert rec.flush() == 1
    events = of_type(security_events(gw), "AuthenticationFailed")
    assert len(events) == 2
    assert sum(e.count for e in events) == 100
    assert {e.window_start for e in events} == {first[0].window_start}
    assert all(e.key_prefix is None and e.route == ROUTE for e in events)
    assert {SecretBox(MASTER).decrypt(e.client_ip_enc) for e in events} == {IP}
    stored = raw_events(gw)
    assert IP.encode() not in stored
    assert not any(presented.encode() in stored for presented in bad)
    rec.close()


def test_a_new_minute_starts_a_new_count_and_close_flushes_the_open_one(gw):
    clock = minute_start()
    rec = recorder(gw, clock)
    for _ in range(3):
        rec.refused("api_key_expired", None, "inference:use", Origin(ROUTE, IP))
    clock.advance(60)
    for _ in range(4):
        rec.refused("api_key_expired", None, "inference:use", Origin(ROUTE, IP))
    rec.close()

    events = of_type(security_events(gw), "AuthenticationFailed")
    assert sorted((e.window_start, e.count) for e in events) == sorted(
        [(events[0].window_start, 1), (events[0].window_start, 2),
         (events[-1].window_start, 1), (events[-1].window_start, 3)])
    assert len({e.window_start for e in events}) == 2


def test_past_the_bucket_cap_a_minute_counts_further_ips_as_other(gw):
    rec = recorder(gw, minute_start(), max_buckets=3)
    for n in range(10):
        rec.refused("missing_api_key", None, "inference:use", Origin(ROUTE, f"198.51.100.{n}"))
    rec.close()

    events = of_type(security_events(gw), "AuthenticationFailed")
    by_ip: dict[str, int] = {}
    for e in events:
        ip = SecretBox(MASTER).decrypt(e.client_ip_enc)
        by_ip[ip] = by_ip.get(ip, 0) + e.count
    assert sum(by_ip.values()) == 10
    assert by_ip.pop("other") == 7
    assert sorted(by_ip) == ["198.51.100.0", "198.51.100.1", "198.51.100.2"]


def test_revoked_rotated_and_expired_keys_are_recorded_as_key_misuse(gw):
    account = gw.accounts.open_account("misuse@example.com", "dev", "staff:test")
    revoked = gw.access.issue_key(account, "revoked", "live", None, None, "staff:test")
    rotated = gw.access.issue_key(account, "rotated", "live", None, None, "staff:test")
    expiring = gw.access.issue_key(account, "expiring", "live", None, 1, "staff:test")
    gw.access.revoke_key(revoked.key_id, "leaked in a log", "staff:test")
    gw.access.rotate_key(rotated.key_id, 0, "staff:test")
    gw.access.clock = FrozenClock(datetime.now(UTC))
    gw.access.clock.advance(2 * 86_400)
    gw.access.forget_cached()
    rec = recorder(gw, minute_start())

    for secret in (revoked.secret, rotated.secret, expiring.secret):
        with pytest.raises(AuthError) as refused:
            gw.access.authenticate_key(secret)
        rec.refused(refused.value.code, secret, "inference:use", Origin(ROUTE, IP))
    rec.close()

    misuse = {(e.key_id, e.kind, e.account_id) for e in
              of_type(security_events(gw), "KeyMisuse")}
    assert misuse == {(revoked.key_id, "revoked_key_used", account),
                      (rotated.key_id, "rotated_key_used", account),
                      (expiring.key_id, "expired_key_used", account)}
    failed = of_type(security_events(gw), "AuthenticationFailed")
    # Revoked and rotated-out secrets both fail as "revoked" from one IP: counted together.
    assert sorted((e.reason, e.count) for e in failed) == [("expired", 1), ("revoked", 1),
                                                            ("revoked", 1)]
    stored = raw_events(gw)
    assert not any(s.encode() in stored for s in (revoked.secret, rotated.secret,
                                                  expiring.secret))


def test_a_failing_store_or_cipher_never_reaches_the_caller(gw, caplog):
    class Broken:
        def save(self, *_):
            raise RuntimeError("event store away")

        def encrypt(self, _):
            raise RuntimeError("no key")

    rec = SecurityRecorder(Broken(), SecretBox(MASTER), minute_start(), gw.access.pepper,
                           gw.access_queries.key_by_hash, flush_interval=3600)
    rec.start()
    rec.refused("invalid_api_key", generate_api_key("live"), "inference:use",
                Origin(ROUTE, IP))
    assert rec.wait_idle()
    assert rec.failures == 1 and rec.recorded == 0

    rec.cipher = Broken()
    rec.refused("missing_api_key", None, "inference:use", Origin(ROUTE, "192.0.2.1"))
    clock, rec.clock = rec.clock, None  # even a broken request-path step is swallowed
    rec.refused("missing_api_key", None, "inference:use", Origin(ROUTE, IP))
    rec.clock = clock
    rec.close()
    assert rec.failures == 3 and rec.recorded == 0


def test_the_read_model_lists_by_time_account_and_kind_without_ips(gateway):
    account = gateway.accounts.open_account("model@example.com", "dev", "staff:test")
    key = gateway.access.issue_key(account, "scoped", "live", ["models:read"], None,
                                   "staff:test")
    record = gateway.access.authenticate_key(key.secret).key
    rec = recorder(gateway, minute_start())
    unknown = generate_api_key("test")
    rec.refused("invalid_api_key", unknown, "inference:use", Origin(ROUTE, IP))
    rec.key_misused(record, "scope_violation", Origin("GET /v1/account/balance", IP))
    rec.close()
    top = gateway.stores.access.recorder.max_notification_id()
    assert gateway.projector.wait_for("access", top)
    queries = SecurityQueries(gateway.db)

    everything = queries.page(PageRequest(limit=10))
    assert [row["kind"] for row in everything["data"]] == ["key_misuse",
                                                          "authentication_failed"]
    assert everything["has_more"] is False
    failed = queries.page(PageRequest(), kind="authentication_failed")["data"]
    assert [(r["reason"], r["key_prefix"], r["count"]) for r in failed] == \
        [("unknown", unknown[:12], 1)]
    mine = queries.page(PageRequest(), account_id=account)["data"]
    assert [(r["reason"], r["principal"]) for r in mine] == \
        [("scope_violation", {"kind": "api_key", "id": key.key_id})]
    assert queries.page(PageRequest(), end=failed[0]["at"])["data"] == []
    assert len(queries.page(PageRequest(), start=failed[0]["at"])["data"]) == 2
    first = queries.page(PageRequest(limit=1))
    assert first["has_more"] and first["next_cursor"]
    with gateway.db.transaction() as cur:
        cur.execute("SELECT * FROM security_events")
        rows = repr(cur.fetchall())
    assert IP not in rows and unknown not in rows
    assert Security.create_id("x") != Security.create_id("y")
