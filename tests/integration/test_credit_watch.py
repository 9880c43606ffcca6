"""Provider credit monitoring (3.6) at the service level: a real Gateway (SQLite, PostgreSQL), a
fake OpenRouter /credits on loopback, the watch as bootstrap wires it, and the resolver with
the credit level in its health signals, as RoutingHealth will give it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from decimal import Decimal

import pytest
from fakes.balance_server import FakeBalance
from fakes.listing_server import ListingFault
from hypothesis import given, settings
from hypothesis import strategies as st
from service.routing_fakes import principal, provider

from adapters import provider_balance
from adapters.clock import FrozenClock
from application.apps import CatalogApp
from application.catalog_view import Snapshot
from application.credit_watch import CreditWatch, run_forever
from application.resolve import Resolver
from domain.provider_credit import DEFAULT_THRESHOLDS, Thresholds, usd_to_micros

ADMIN = "usr_integration-admin"
KEY = "sk-or-balance-credential-9876"
SHARED = ("acme/alpha", "acme/beta", "acme/gamma")  # openrouter is the cheapest of three
SOLO = "acme/solo"  # openrouter alone


@pytest.fixture(params=("sqlite", "postgres"))
def backend(request) -> str:  # overrides conftest's: the stores credit events land in
    return request.param


@pytest.fixture(scope="module")
def server():
    with FakeBalance(name="credit-watch") as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    yield server
    server.reset()


def watch_of(gw, **kwargs) -> CreditWatch:
    """The watch as Routing.attach wires it, with a frozen clock and a short timeout."""
    return CreditWatch(lambda: gw.catalog_view.snapshot, gw.vault.get, gw.stores.catalog,
                       provider_balance, FrozenClock(), timeout_s=1, **kwargs)


class WithCredit:
    """RoutingHealth.signals() once wired: ``credit_level`` from the watch."""
    def __init__(self, health, watch: CreditWatch) -> None:
        self.health, self.watch = health, watch

    def signals(self, provider: str, model_id: str):
        return replace(self.health.signals(provider, model_id),
                       credit_level=self.watch.level(provider))


@pytest.fixture
def routed(gateway, fake):
    """openrouter (balance API, cheapest), together and fireworks serving SHARED; SOLO only
    on openrouter. Returns (gateway, watch, resolver)."""
    gw = gateway
    for slug in ("openrouter", "together", "fireworks"):
        gw.catalog.register_provider({"slug": slug, "base_url": fake.base_url,
                                      "allow_private": True, "credential": KEY}, ADMIN)
    for model in (*SHARED, SOLO):
        for slug, price in (("openrouter", "1"), ("together", "2"), ("fireworks", "3")):
            if model != SOLO or slug == "openrouter":
                gw.catalog.set_prices(model, {"provider": slug, "context_length": 8192,
                                              "prices": {"input": price, "output": price}},
                                      ADMIN)
    watch = watch_of(gw)
    return gw, watch, Resolver(gw.catalog_view, WithCredit(gw.routing.health, watch))


def chains(resolver: Resolver) -> dict[str, list[str]]:
    return {m: [o.provider.slug for o in resolver.resolve(m, principal()).offers]
            for m in (*SHARED, SOLO)}


def changes(gw) -> list:
    """The LevelChanged events of a gateway (or of a bare catalog Application)."""
    app = getattr(getattr(gw, "stores", None), "catalog", gw)
    events = map(app.mapper.to_domain_event,
                 app.recorder.select_notifications(start=1, limit=1_000_000))
    return [e for e in events if type(e).__qualname__ == "ProviderCredit.LevelChanged"]


def read(watch: CreditWatch, times: int = 1) -> dict:
    return [asyncio.run(watch.refresh()) for _ in range(times)][-1]


def test_balance_80_puts_the_provider_last_for_every_model_with_one_alert_in_10_reads(
        routed, fake, caplog):
    gw, watch, resolver = routed
    assert all(chain[0] == "openrouter" for chain in chains(resolver).values())
    caplog.set_level(logging.INFO, logger="gatewayz.credit")
    assert read(watch, 10) == {"openrouter": "warning"}  # only it has a balance API
    assert chains(resolver) == {**{m: ["together", "fireworks", "openrouter"] for m in SHARED},
                                SOLO: ["openrouter"]}
    [event] = changes(gw)
    assert (event.provider, event.level, event.previous, event.balance_micros) == (
        "openrouter", "warning", None, 80_000_000)
    alerts = [r for r in caplog.records if "credit level" in r.getMessage()]
    assert [r.levelno for r in alerts] == [logging.WARNING]
    assert watch.alerts == {("openrouter", "warning"): 1}
    requests = fake.requests
    assert len(requests) == 10 and {r.path for r in requests} == {"/v1/credits"}
    assert requests[0].headers["authorization"] == f"Bearer {KEY}"
    for _ in range(50):
        chains(resolver)
    assert len(fake.requests) == 10  # routing never calls the billing API
    view = watch.balance("openrouter")
    assert (view["balance_usd"], view["level"], view["last_error"], view["monitored"]) == (
        "80", "warning", None, True)


FAULTS = (ListingFault(status=500), ListingFault(status=401), ListingFault(hang_s=1.5),
          ListingFault(body=b"{not json"), ListingFault(body=b'{"data": {"total_credits": "9"}}'),
          ListingFault(body=b'{"data": {"total_credits": 1e10, "total_usage": 0}}'),
          ListingFault(huge_bytes=1 << 20), ListingFault(redirect_to="/v1/elsewhere"))


def test_a_failing_balance_api_keeps_the_last_known_value_and_routing(routed, fake):
    gw, watch, resolver = routed
    read(watch)
    before, read_at = chains(resolver), watch.balance("openrouter")["read_at"]
    watch.clock.advance(60)  # a failed read must not move read_at
    fake.balance = Decimal("5000")  # unseen: every read below fails
    for fault in FAULTS:
        fake.script(fault)
        assert read(watch) == {"openrouter": "warning"}, fault
        view = watch.balance("openrouter")
        assert (view["balance_usd"], view["level"], view["read_at"]) == (
            "80", "warning", read_at) and view["last_error"], (fault, view)
        assert chains(resolver) == before and len(changes(gw)) == 1, fault
    assert all(r.path == "/v1/credits" for r in fake.requests)  # the redirect not followed
    assert read(watch) == {"openrouter": None} and not watch.balance("openrouter")["last_error"]
    assert [e.level for e in changes(gw)] == ["warning", None]


def test_a_first_read_failing_keeps_the_recorded_level_or_changes_nothing(routed, fake):
    gw, watch, resolver = routed
    fake.script(ListingFault(status=503))
    assert read(watch) == {"openrouter": None}  # nothing known: routing unaffected
    assert chains(resolver)[SHARED[0]][0] == "openrouter" and changes(gw) == []
    read(watch)
    restarted = watch_of(gw)  # a new process while the billing API is down
    fake.script(ListingFault(status=503))
    assert read(restarted) == {"openrouter": "warning"}
    assert restarted.balance("openrouter")["last_error"].endswith("HTTP 503")
    assert len(changes(gw)) == 1


def test_warning_critical_and_back_to_healthy_are_each_recorded_once(routed, fake, caplog):
    gw, watch, resolver = routed
    caplog.set_level(logging.INFO, logger="gatewayz.credit")
    seen = []
    for balance in ("80", "80", "10", "10", "10", "1000", "1000"):
        fake.balance = Decimal(balance)
        seen.append((read(watch)["openrouter"], chains(resolver)))
    assert [level for level, _ in seen] == ["warning"] * 2 + ["critical"] * 3 + [None] * 2
    critical = seen[2][1]  # excluded while others remain; still the only candidate's
    assert critical == {**{m: ["together", "fireworks"] for m in SHARED}, SOLO: ["openrouter"]}
    assert seen[-1][1][SHARED[0]] == ["openrouter", "together", "fireworks"]
    assert [(e.previous, e.level, e.balance_micros) for e in changes(gw)] == [
        (None, "warning", 80_000_000), ("warning", "critical", 10_000_000),
        ("critical", None, 1_000_000_000)]
    alerts = [r.levelno for r in caplog.records if "credit level" in r.getMessage()]
    assert alerts == [logging.WARNING, logging.WARNING, logging.INFO]


def test_workers_reading_the_same_balance_record_one_crossing(routed, fake):
    gw, watch, _ = routed
    others = [watch_of(gw) for _ in range(3)]  # three more workers

    async def together():
        return await asyncio.gather(*(w.refresh() for w in (watch, *others)))

    assert asyncio.run(together()) == [{"openrouter": "warning"}] * 4
    assert len(changes(gw)) == 1
    assert sum(sum(w.alerts.values()) for w in (watch, *others)) == 1


def test_per_provider_thresholds_and_only_monitored_providers_are_read(routed, fake):
    gw, _, _ = routed
    watch = watch_of(gw, thresholds={"openrouter": Thresholds(10**9, 90 * 10**6, 85 * 10**6)})
    assert read(watch) == {"openrouter": "critical"}
    assert watch.balance("openrouter")["thresholds"]["critical_usd"] == "85"
    gw.catalog.set_enabled("openrouter", False, "credit test", ADMIN)
    assert read(watch) == {} and watch.level("openrouter") is None
    assert watch.balance("openrouter")["monitored"] is False
    assert read(watch_of(gw, apis={"together": "/credits"})) == {"together": "warning"}


def test_the_scheduled_loop_reads_again_and_records_as_the_scheduler(routed, fake):
    gw, watch, _ = routed

    async def run_a_while():
        task = asyncio.create_task(run_forever(watch, interval_s=0.05))
        while len(fake.requests) < 3:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(run_a_while())
    [event] = changes(gw)
    assert event.__dict__["envelope"]["actor"] == {"kind": "scheduler", "id": "credit-watch"}


def test_the_credential_never_reaches_a_refused_host(fake):
    async def attempt():
        sessions = provider_balance.CheckedSessions()
        try:
            return await provider_balance.read_balance(
                sessions, base_url=fake.base_url, path="/credits", credential=KEY,
                allow_private=False)
        finally:
            await sessions.close()

    with pytest.raises(provider_balance.BalanceError, match="base URL refused"):
        asyncio.run(attempt())
    assert fake.requests == []


class ScriptedReader:
    """The adapter's shape with readings from a list: a Decimal, or None for a failure."""

    BalanceError = provider_balance.BalanceError

    def __init__(self, readings: list) -> None:
        self.readings = list(readings)

    class CheckedSessions:
        async def close(self) -> None: ...

    async def read_balance(self, sessions, **_):
        value = self.readings.pop(0)
        if value is None:
            raise self.BalanceError("scripted")
        return value


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(
    [Decimal(v) for v in ("600", "500", "100.000001", "100", "80", "20", "0", "-1")]),
    st.decimals(min_value=-1000, max_value=1000, places=6)), max_size=25))
def test_one_event_per_crossing_whatever_the_readings_and_failures(readings):
    snap = Snapshot({"openrouter": provider("openrouter")}, {}, {}, {}, {}, {}, {})
    app = CatalogApp()
    watch = CreditWatch(lambda: snap, lambda slug: KEY, app, ScriptedReader(readings))
    for _ in readings:
        asyncio.run(watch.refresh())
    levels = [DEFAULT_THRESHOLDS.level(usd_to_micros(r)) for r in readings if r is not None]
    crossings = sum(a != b for a, b in zip([None, *levels], levels, strict=False))
    assert len(changes(app)) == crossings == sum(watch.alerts.values())
    assert watch.level("openrouter") == (levels[-1] if levels else None)
