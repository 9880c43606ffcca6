"""Key settings over every event-store backend: PATCH as one ApiKey.SettingsChanged with
{field, old, new}, nothing stored for a refused PATCH, expiry recorded once (1.3, 11.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import FrozenClock
from application.key_settings import KeySettingsService
from domain.api_key import ApiKey
from domain.errors import DomainError
from domain.ids import new_id
from domain.inference_request import InferenceRequest
from domain.key_format import secret_hash
from integration.support import stream_events
from projections.verify import verify

ACTOR = "usr_settings-test"


@pytest.fixture
def account_id(gateway) -> str:
    return gateway.accounts.open_account("settings@example.com", "dev", "staff:test")


@pytest.fixture
def service(gateway) -> KeySettingsService:
    return KeySettingsService(gateway.stores, gateway.access_queries, gateway.clock,
                              gateway.projector.wait_for)


def issue(gateway, account_id: str, name: str = "ci key", expires_in_days=None):
    return gateway.access.issue_key(account_id, name, "live", None, expires_in_days,
                                    "staff:test")


def key_events(gateway, key_id: str):
    return stream_events(gateway.stores.access, ApiKey.create_id(key_id))


def refused(call) -> DomainError:
    with pytest.raises(DomainError) as error:
        call()
    return error.value


def test_a_patch_records_one_event_with_each_change_and_the_view_shows_it(
        gateway, account_id, service):
    issued = issue(gateway, account_id)
    body = {"name": " Renamed ", "ip_allowlist": ["10.0.0.0/24", "::ffff:192.0.2.1"],
            "referrer_allowlist": ["*.Example.com"], "max_requests": 500,
            "labels": ["team=search"], "rate_limits": {"requests_per_minute": 30},
            "allowed_models": ["openai/*"], "scopes": ["*"]}

    view = service.update_key(issued.key_id, body, ACTOR, {"requests_per_minute": 60}, False)

    events = key_events(gateway, issued.key_id)
    assert [e.type for e in events] == ["ApiKey.Issued", "ApiKey.SettingsChanged"]
    assert events[1].data["actor"] == ACTOR
    assert events[1].data["changes"] == [  # scopes were already ["*"]: not listed
        {"field": "name", "old": "ci key", "new": "Renamed"},
        {"field": "max_requests", "old": None, "new": 500},
        {"field": "ip_allowlist", "old": [], "new": ["10.0.0.0/24", "192.0.2.1"]},
        {"field": "referrer_allowlist", "old": [], "new": ["*.example.com"]},
        {"field": "allowed_models", "old": [], "new": ["openai/*"]},
        {"field": "labels", "old": {}, "new": {"team": "search"}},
        {"field": "rate_limits", "old": {}, "new": {"requests_per_minute": 30}}]
    assert view["id"] == issued.key_id and view["object"] == "api_key"
    assert (view["name"], view["status"], view["max_requests"]) == ("Renamed", "active", 500)
    assert view["ip_allowlist"] == ["10.0.0.0/24", "192.0.2.1"]
    assert view["labels"] == {"team": "search"}
    assert view["requests_used"] == 0 and view["last_used_at"] is None
    assert not {"hash", "secret_hash", "key"} & set(view)
    assert gateway.access_queries.keys_of(account_id) == [view]


def test_key_by_hash_returns_the_new_settings(gateway, account_id, service):
    issued = issue(gateway, account_id)
    service.update_key(issued.key_id, {"ip_allowlist": ["192.168.1.1"], "max_requests": 9,
                                       "referrer_allowlist": ["app.example.com"],
                                       "rate_limits": {"burst": 3}, "labels": {"a": "b"},
                                       "allowed_models": ["x/*"]}, ACTOR)

    record = gateway.access_queries.key_by_hash(secret_hash(gateway.access.pepper,
                                                            issued.secret))

    assert record.ip_allowlist == ("192.168.1.1",)
    assert record.referrer_allowlist == ("app.example.com",)
    assert (record.max_requests, record.rate_limits, record.labels) == (9, {"burst": 3},
                                                                       {"a": "b"})
    assert record.allowed_models == ("x/*",)
    # The worker's cache is cleared when access events are projected: seen at once.
    assert gateway.access.authenticate_key(issued.secret).key.max_requests == 9


def test_a_patch_that_changes_nothing_records_nothing(gateway, account_id, service):
    issued = issue(gateway, account_id)
    before = gateway.stores.max_positions()

    view = service.update_key(issued.key_id, {"name": "ci key", "scopes": ["*"]}, ACTOR)

    assert view["name"] == "ci key"
    assert gateway.stores.max_positions() == before


@pytest.mark.parametrize(("body", "code"), [
    ({"ip_allowlist": ["10.0.0.0/24", "10.0.0.0/33"]}, "invalid_ip_allowlist"),
    ({"referrer_allowlist": ["https://app.example.com"]}, "invalid_referrer_allowlist"),
    ({"name": "fine", "requests_used": 0}, "invalid_request"),
    ({"environment": "test"}, "invalid_request"),
    ({"rate_limits": {"requests_per_minute": 61}}, "invalid_request"),
], ids=["ip", "referrer", "read-only", "environment", "above-plan"])
def test_bad_input_leaves_the_store_and_the_key_unchanged(gateway, account_id, service, body,
                                                          code):
    issued = issue(gateway, account_id)
    service.update_key(issued.key_id, {"ip_allowlist": ["192.168.1.1"]}, ACTOR)
    before = gateway.stores.max_positions()

    error = refused(lambda: service.update_key(issued.key_id, body, ACTOR,
                                               {"requests_per_minute": 60}, False))

    assert error.code == code
    assert gateway.stores.max_positions() == before
    assert gateway.access_queries.key_view(issued.key_id)["ip_allowlist"] == ["192.168.1.1"]


def test_a_name_taken_by_another_key_of_the_account_is_a_conflict(gateway, account_id,
                                                                   service):
    issue(gateway, account_id, name="Prod")
    issued = issue(gateway, account_id, name="staging")
    before = gateway.stores.max_positions()

    error = refused(lambda: service.update_key(issued.key_id, {"name": "PROD"}, ACTOR))

    assert (error.code, error.param) == ("key_name_taken", "name")
    assert gateway.stores.max_positions() == before
    # A key may change the case of its own name, and another account's names do not count.
    assert service.update_key(issued.key_id, {"name": "Staging"}, ACTOR)["name"] == "Staging"
    other = gateway.accounts.open_account("other@example.com", "dev", "staff:test")
    assert service.update_key(issue(gateway, other).key_id, {"name": "prod"}, ACTOR)


def test_a_revoked_key_cannot_be_updated(gateway, account_id, service):
    issued = issue(gateway, account_id)
    gateway.access.revoke_key(issued.key_id, "leaked in a public repository", "staff:test")
    before = gateway.stores.max_positions()

    error = refused(lambda: service.update_key(issued.key_id, {"name": "again"}, ACTOR))

    assert error.code == "api_key_revoked"
    assert gateway.stores.max_positions() == before


def test_another_accounts_key_is_not_found(gateway, account_id, service):
    issued = issue(gateway, account_id)
    other = gateway.accounts.open_account("stranger@example.com", "dev", "staff:test")

    error = refused(lambda: service.update_key(issued.key_id, {"name": "mine"}, ACTOR,
                                               account_id=other))
    unknown = refused(lambda: service.update_key("key_missing", {"name": "mine"}, ACTOR))

    assert error.code == unknown.code == "not_found"


def test_expire_due_records_one_expiry_once(gateway, account_id, service):
    expiring = issue(gateway, account_id, name="short", expires_in_days=1)
    lasting = issue(gateway, account_id, name="long", expires_in_days=30)
    revoked = issue(gateway, account_id, name="gone", expires_in_days=1)
    gateway.access.revoke_key(revoked.key_id, "no longer needed by anyone", "staff:test")
    later = datetime.now(UTC) + timedelta(days=2)

    assert service.expire_due(datetime.now(UTC)) == 0
    assert service.expire_due(later) == 1
    assert service.expire_due(later) == 0

    events = key_events(gateway, expiring.key_id)
    assert [e.type for e in events] == ["ApiKey.Issued", "ApiKey.Expired"]
    assert events[1].data["expired_at"] == events[0].data["expires_at"]
    view = gateway.access_queries.key_view(expiring.key_id)
    assert (view["status"], view["expired_at"]) == ("expired", events[0].data["expires_at"])
    assert gateway.access_queries.key_view(lasting.key_id)["status"] == "active"
    assert [e.type for e in key_events(gateway, revoked.key_id)] == \
        ["ApiKey.Issued", "ApiKey.Revoked"]
    # An expired key can no longer be changed, nor brought back by moving its expiry.
    service.clock = FrozenClock(later)
    assert refused(lambda: service.update_key(
        expiring.key_id, {"expires_in_days": 5}, ACTOR)).code == "api_key_expired"


def record_request(gateway, account_id: str, key_id: str) -> None:
    """A request's first event as the inference path writes it (no hold: zero micros)."""
    request = InferenceRequest(
        request_id=new_id("req"), account_id=account_id, key_id=key_id,
        endpoint="chat.completions", requested_model="acme/chat-1",
        candidate_models=["acme/chat-1"], price_snapshot={}, estimated_input_tokens=1,
        output_limit=1, hold_micros=0, reserved_by_pool={}, stream=False,
        worker_id=gateway.workers.worker_id)
    position = gateway.stores.requests.save(request)[-1].notification.id
    gateway.projector.wait_for("requests", position)


def test_requests_used_and_last_used_come_from_their_tables(gateway, account_id):
    issued = issue(gateway, account_id)
    other = issue(gateway, account_id, name="other")
    queries = gateway.access_queries
    assert queries.requests_used(issued.key_id) == 0
    for _ in range(3):
        record_request(gateway, account_id, issued.key_id)
    record_request(gateway, account_id, other.key_id)

    assert queries.requests_used(issued.key_id) == 3
    assert queries.key_view(issued.key_id)["requests_used"] == 3
    assert [k["requests_used"] for k in queries.keys_of(account_id)] == [3, 1]

    assert queries.note_key_used(issued.key_id, "2026-12-01T12:00:00+00:00",
                                 "2026-12-01T11:59:00+00:00")
    assert not queries.note_key_used(issued.key_id, "2026-12-01T12:00:30+00:00",
                                     "2026-12-01T11:59:30+00:00")
    assert queries.note_key_used(issued.key_id, "2026-12-01T12:01:00+00:00",
                                 "2026-12-01T12:00:00+00:00")
    assert queries.key_view(issued.key_id)["last_used_at"] == "2026-12-01T12:01:00+00:00"


def test_a_rebuild_gives_the_same_key_rows(gateway, account_id, service):
    """replay --verify compares api_keys with a rebuild: settings and expiry are facts of
    events; last_used_at lives outside (no event records a use), so writing it is no drift."""
    issued = issue(gateway, account_id, expires_in_days=1)
    service.update_key(issued.key_id, {"name": "Rebuilt", "ip_allowlist": ["10.0.0.0/8"],
                                       "labels": {"k": "v"}}, ACTOR)
    service.expire_due(datetime.now(UTC) + timedelta(days=2))
    gateway.access_queries.note_key_used(issued.key_id, "2026-12-01T12:00:00+00:00",
                                         "2026-12-01T11:59:00+00:00")
    gateway.projector.run_until_idle()

    reports = verify(gateway.config, gateway.stores, gateway.db)

    assert "api_keys" in {r.table for r in reports}
    assert [r.first_difference for r in reports if not r.match] == []
