"""Provider credit monitoring (3.6) through the served app: GET /admin/providers/{slug}/balance
shows the watch's cached reading (never a call out), failures keep the last known balance, and
each crossing is a `ProviderCredit.LevelChanged` event in the audit feed.

A read is triggered with the gateway's own watch (``gw.routing.credit.refresh()``), as the
maintenance loop does every 15 minutes.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from fakes.balance_server import FakeBalance
from fakes.listing_server import ListingFault

from e2e.support import assert_error, customer

SLUG = "openrouter"  # the shipped default with a balance API (/credits)
PATH = f"/admin/providers/{SLUG}/balance"


@pytest.fixture(scope="module")
def balance_server():
    with FakeBalance(name="credit-http") as fake:
        yield fake


@pytest.fixture
def fake(balance_server):
    balance_server.reset()
    yield balance_server
    balance_server.reset()


def read_now(served) -> dict:
    return asyncio.run(served.gateway.routing.credit.refresh())


def balance(served, path: str = PATH) -> dict:
    response = served.admin("GET", path)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_admin_sees_the_cached_balance_level_and_thresholds(served, fake):
    served.register_provider(SLUG, fake.base_url)
    unread = balance(served)
    assert (unread["object"], unread["provider"], unread["monitored"], unread["balance_usd"],
            unread["level"], unread["read_at"]) == ("provider_balance", SLUG, True, None,
                                                    None, None)
    assert read_now(served) == {SLUG: "warning"}
    calls = len(fake.requests)
    shown = [balance(served) for _ in range(3)]
    assert len(fake.requests) == calls  # the route shows the cache, never reads
    assert shown[0] == shown[2]
    view = shown[0]
    assert (view["balance_usd"], view["balance_micros"], view["level"], view["last_error"]) \
        == ("80", 80_000_000, "warning", None)
    assert view["read_at"].endswith("Z")
    assert view["thresholds"] == {"info_usd": "500", "warning_usd": "100",
                                  "critical_usd": "20"}
    assert fake.requests[0].headers["authorization"] == "Bearer sk-upstream-secret-1234"


def test_a_failed_read_shows_its_error_beside_the_last_known_balance(served, fake):
    served.register_provider(SLUG, fake.base_url)
    read_now(served)
    fake.script(ListingFault(status=500))
    fake.balance = Decimal("9")
    assert read_now(served) == {SLUG: "warning"}
    view = balance(served)
    assert (view["balance_usd"], view["level"]) == ("80", "warning")
    assert view["last_error"].endswith("HTTP 500") and view["failed_at"]
    assert read_now(served) == {SLUG: "critical"}
    assert balance(served)["last_error"] is None


def test_each_crossing_is_one_event_in_the_audit_feed(served, fake):
    served.register_provider(SLUG, fake.base_url)
    for usd in ("80", "80", "10", "1000"):
        fake.balance = Decimal(usd)
        read_now(served)
    events = [e for e in served.admin("GET", "/audit/events", params={
        "context": "catalog", "limit": 1000}).json()["data"]
        if e["type"] == "ProviderCredit.LevelChanged"]
    assert [(e["data"]["previous"], e["data"]["level"], e["data"]["balance_micros"])
            for e in events] == [(None, "warning", 80_000_000),
                                 ("warning", "critical", 10_000_000),
                                 ("critical", None, 1_000_000_000)]
    assert {e["data"]["provider"] for e in events} == {SLUG}


def test_providers_without_a_read_balance_and_unknown_slugs(served, fake):
    # The shipped default not configured yet: known, with a balance API, not watched.
    default = balance(served)
    assert (default["monitored"], default["balance_api"], default["balance_usd"]) == (
        False, True, None)
    served.register_provider("fakeup", fake.base_url)
    assert read_now(served) == {}  # no provider with a balance API is configured
    other = balance(served, "/admin/providers/fakeup/balance")
    assert (other["monitored"], other["balance_api"], other["level"]) == (False, False, None)
    assert fake.requests == []
    assert_error(served.admin("GET", "/admin/providers/no-such/balance"), 404, "not_found")


def test_only_staff_admins_see_balances(served):
    key = customer(served).key
    answer = served.http.get(PATH, headers={"Authorization": f"Bearer {key}"})
    assert_error(answer, 403, "wrong_credential_type")
    assert_error(served.http.get(PATH), 401, "missing_api_key")
