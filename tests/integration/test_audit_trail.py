"""The event envelope and the hash-chained audit trail over every backend (11.1, 11.6, 11.7)."""

from __future__ import annotations

import hashlib
import json

import pytest

from application.envelope import Actor, Envelope, acting
from application.feed import published_notification
from domain.inference_request import InferenceRequest
from projections import audit_trail
from projections.audit_canonical import GENESIS, canonical
from projections.audit_export import export_bundle

DOLLAR = 1_000_000
STAFF = Actor("staff", "usr_auditor_test")


def entries(gw) -> list[dict]:
    with gw.db.transaction() as cur:
        cur.execute("SELECT body FROM audit_entries ORDER BY seq")
        return [json.loads(row[0]) for row in cur.fetchall()]


def settle_request(gw, account_id: str, request_id: str, charge: int) -> None:
    request = InferenceRequest(request_id=request_id, account_id=account_id, key_id="key_x",
                               endpoint="chat", requested_model="m", candidate_models=["m"],
                               price_snapshot={}, estimated_input_tokens=1, output_limit=1,
                               hold_micros=max(charge, 1), reserved_by_pool={"purchased": 1},
                               stream=False)
    request.settle(provider="p", served_model="m", attempts=[], tokens={"input": 1},
                   token_source="provider", cost_micros=charge,
                   charged_by_pool={"purchased": charge} if charge else {},
                   finish_reason="stop", ttfb_ms=1, duration_ms=2, client_disconnected=False)
    gw.stores.requests.save(request)


def test_every_saved_event_carries_the_envelope_of_the_command_that_saved_it(gateway):
    with acting(Envelope(STAFF, correlation_id="req_corr", command_id="cmd_1")):
        account_id = gateway.accounts.open_account("env@example.com", "dev", "staff:test")
    app = gateway.stores.accounts
    notes = app.recorder.select_notifications(start=1, limit=10)
    feed = [published_notification("accounts", app, note) for note in notes]

    assert [e["type"] for e in feed] == ["Account.Opened", "Wallet.Opened"]
    for event in feed:
        assert event["actor"] == {"kind": "staff", "id": "usr_auditor_test"}
        assert (event["correlation_id"], event["command_id"]) == ("req_corr", "cmd_1")
        assert event["schema_version"] == 1 and event["recorded_at"].endswith("Z")
        assert event["context"] == "accounts" and event["position"] in (1, 2)
    assert feed[0]["data"]["email_domain_hash"] and account_id


def test_events_saved_outside_any_command_are_the_systems(gateway):
    gateway.accounts.open_account("sys@example.com", "dev", "staff:test")
    note = gateway.stores.accounts.recorder.select_notifications(start=1, limit=1)[0]

    event = published_notification("accounts", gateway.stores.accounts, note)

    assert event["actor"] == {"kind": "system", "id": "gatewayz"}
    assert event["command_id"] is None and event["correlation_id"] is None


def test_the_chain_links_every_audited_event_and_skips_free_request_bookkeeping(gateway):
    with acting(Envelope(STAFF, correlation_id="req_a")):
        account_id = gateway.accounts.open_account("chain@example.com", "dev", "staff:test")
        gateway.accounts.grant_credits(account_id, 5 * DOLLAR, "chain test grant", "usr_a")
    settle_request(gateway, account_id, "req_paid", 700)
    settle_request(gateway, account_id, "req_free", 0)
    gateway.projector.run_until_idle()

    chain = entries(gateway)

    assert [e["seq"] for e in chain] == list(range(1, len(chain) + 1))
    types = [e["event_type"] for e in chain]
    assert "Wallet.AdminCreditGranted" in types and "Request.HoldSettled" in types
    assert "Request.HoldPlaced" not in types
    settled = [e for e in chain if e["event_type"] == "Request.HoldSettled"]
    assert len(settled) == 1 and settled[0]["summary"]["charged_micros"] == 700
    prev = GENESIS
    for entry in chain:
        assert entry["prev_hash"] == prev
        body = {k: v for k, v in entry.items() if k != "hash"}
        assert entry["hash"] == hashlib.sha256(bytes.fromhex(prev) + canonical(body)).hexdigest()
        prev = entry["hash"]
    grant = next(e for e in chain if e["event_type"] == "Wallet.AdminCreditGranted")
    assert grant["actor"] == STAFF.stored() and grant["request_id"] == "req_a"
    assert grant["target"] == {"type": "wallet", "id": account_id}


def test_audit_entries_cannot_be_updated_or_deleted(gateway):
    gateway.accounts.open_account("ro@example.com", "dev", "staff:test")
    gateway.projector.run_until_idle()
    for statement in ("UPDATE audit_entries SET event_type = 'x'", "DELETE FROM audit_entries"):
        with pytest.raises(Exception, match="append-only"):
            with gateway.db.transaction() as cur:
                cur.execute(statement)
    assert len(entries(gateway)) == 2


def test_checkpoints_every_n_entries_are_signed_exported_and_verify_offline(
        gateway, tmp_path, monkeypatch):
    monkeypatch.setattr(audit_trail, "CHECKPOINT_EVERY", 3)
    with acting(Envelope(STAFF, correlation_id="req_cp")):
        account_id = gateway.accounts.open_account("cp@example.com", "dev", "staff:test")
        for i in range(4):
            gateway.accounts.grant_credits(account_id, DOLLAR, f"checkpoint grant {i}", "usr_a")
    gateway.projector.run_until_idle()
    gateway.audit.sign_pending()
    gateway.audit.rotate()
    settle_request(gateway, account_id, "req_after_rotation", 10)
    gateway.projector.run_until_idle()
    gateway.audit.shutdown()

    from entrypoints.audit_verifier import verify_bundle

    manifest = export_bundle(gateway.stores, gateway.db, gateway.clock, tmp_path / "bundle")
    report = verify_bundle(tmp_path / "bundle")

    assert manifest["checkpoints"] >= 3
    assert report.valid, report.to_json()
    keys = json.loads((tmp_path / "bundle" / "public-keys.json").read_text())["keys"]
    assert [k["key_id"] for k in keys] == ["k1", "k2"] and keys[0]["valid_until"]
    exported = sorted(gateway.audit.sink.glob("*.json"))
    assert len(exported) == manifest["checkpoints"]
