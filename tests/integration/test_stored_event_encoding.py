"""Stored events are plain JSON on every backend: no type tags, no floats, no secrets (11.1)."""

from __future__ import annotations

import json

from integration.support import assert_plain_json, place_hold, raw_events, settle

EMAIL = "Plain.Text.Person@example.com"
UPSTREAM_SECRET = "sk-upstream-canary-9f8e7d6c5b4a"


def mixed_workload(gateway) -> list[str]:
    """Touch every command the foundation has; returns the secrets it handed out."""
    _, staff_token = gateway.access.bootstrap_owner("owner@example.com")
    account_id = gateway.accounts.open_account(EMAIL, "trial", "staff:test")
    gateway.accounts.grant_credits(account_id, 3_000_000, "welcome credit for testing",
                                   "usr_admin")
    gateway.accounts.credit_purchase(account_id, "pi_1", 500, "starter", "stripe")
    gateway.accounts.reset_allowance(account_id, "team", "in_1", 2_000_000, 0)
    gateway.accounts.forfeit(account_id, "allowance", 1_000, "subscription cancelled")
    gateway.accounts.forfeit(account_id, "trial", 1_000, "trial ended")
    issued = gateway.access.issue_key(account_id, "encoding", "live", ["inference:use"], 30,
                                      "staff:test")
    rotated = gateway.access.rotate_key(issued.key_id, 60, "staff:test")
    gateway.access.revoke_key(issued.key_id, "end of the encoding test", "staff:test")
    gateway.catalog.register_provider({"slug": "fakeup", "base_url": "http://127.0.0.1:9/v1",
                                       "allow_private": True, "credential": UPSTREAM_SECRET},
                                      "staff:test")
    gateway.catalog.set_prices("acme/chat-1", {"provider": "fakeup",
                                               "prices": {"input": "0.15", "output": "0.6"}, "context_length": 128_000},
                               "staff:test")
    settled, _ = place_hold(gateway, account_id, 40_000)
    settle(gateway, settled, 55_000)
    voided, _ = place_hold(gateway, account_id, 10_000)
    voided.void("provider_error", [{"provider": "fakeup", "outcome": "http_error",
                                    "status": 500, "latency_ms": 3}], "upstream 500")
    gateway.stores.requests.save(voided)
    expired, _ = place_hold(gateway, account_id, 7_000)
    expired.expire()
    gateway.stores.requests.save(expired)
    return [staff_token, issued.secret, rotated.secret, UPSTREAM_SECRET]


def test_every_stored_event_is_plain_json_without_type_tags_or_floats(gateway):
    mixed_workload(gateway)
    seen: set[str] = set()

    for app in gateway.stores.by_context().values():
        for event in raw_events(app):
            assert isinstance(json.loads(event.raw), dict)
            assert_plain_json(event.data, f"{event.type}@{event.position}")
            seen.add(event.type)

    assert {"Account.Opened", "Wallet.TrialCreditGranted", "Wallet.AdminCreditGranted",
            "Wallet.PurchaseCredited", "Wallet.AllowanceReset", "Wallet.AllowanceForfeited",
            "Wallet.TrialCreditForfeited", "GrantLog.GrantRecorded", "ApiKey.Issued",
            "ApiKey.Rotated", "ApiKey.Revoked", "User.Added", "User.StaffTokenIssued",
            "InferenceRequest.HoldPlaced", "InferenceRequest.HoldSettled",
            "InferenceRequest.HoldVoided", "InferenceRequest.HoldExpired"} <= seen


def test_stored_events_carry_no_secret_and_no_plaintext_email(gateway):
    secrets = mixed_workload(gateway)
    raw = b"\n".join(event.raw for app in gateway.stores.by_context().values()
                     for event in raw_events(app)).decode()

    for secret in secrets:
        assert secret not in raw
    assert EMAIL.lower() not in raw.lower()


def test_stored_timestamps_are_utc_text_positions_increase_and_versions_have_no_gaps(
        gateway):
    mixed_workload(gateway)

    for app in gateway.stores.by_context().values():
        events = raw_events(app)
        positions = [e.position for e in events]
        assert positions == sorted(set(positions))  # strictly increasing
        versions: dict = {}
        for event in events:
            assert isinstance(event.data["timestamp"], str)
            assert event.data["timestamp"].endswith(("Z", "+00:00"))
            versions.setdefault(event.stream, []).append(event.version)
        for stream_versions in versions.values():
            assert stream_versions == list(range(1, len(stream_versions) + 1))
