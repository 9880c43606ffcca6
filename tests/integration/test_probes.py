"""Active health probes (spec 3.1) against real fake upstreams and real stores: with 100 pairs
due never more than 20 probes in flight; a failed probe retried up to 3 times, then recorded
once; results stored (SQLite and PostgreSQL) with retention and a one-worker lease; uptime
over 24 h, 7 d, 30 d and 90 days of daily history; and results fed to routing health and
incidents, where 3 failed probes open one incident (3.4)."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace

import pytest
from conftest import POSTGRES_URL, close_gateway, open_gateway
from fakes.openai_upstream import Behaviour

from adapters.clock import FrozenClock
from adapters.persistence.database import open_database
from adapters.persistence.migrate import migrate
from adapters.persistence.store_config import StoreConfig
from adapters.probe_store import SqlProbeStore
from adapters.providers.http_client import AiohttpProviderClient
from application.catalog_view import Offer, ProviderInfo
from application.feed import recorded_at
from application.probes import Prober
from domain.pricing import fallback_prices
from domain.probe_schedule import LastResult, ProbeResult, Tier

SLUG, PLATFORM_KEY, DAY = "fakeup", "sk-platform-probe-key", 86_400


def migrated(request, tmp_path, kind: str):
    if kind == "sqlite":
        database = open_database(StoreConfig.sqlite(str(tmp_path / "events.sqlite")))
    else:
        schema = request.getfixturevalue("pg_schema")
        database = open_database(StoreConfig.from_url(POSTGRES_URL, schema))
    migrate(database)
    return database


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    yield (database := migrated(request, tmp_path, request.param))
    database.close()


@pytest.fixture
def sqlite_db(request, tmp_path):
    yield (database := migrated(request, tmp_path, "sqlite"))
    database.close()


def catalog(base_url: str, models: list[str], slugs=(SLUG,)) -> SimpleNamespace:
    """A routing table of the given models on the given (OpenAI-format) providers."""
    providers = {slug: ProviderInfo(slug, slug.title(), "openai", base_url, True, True, 100,
                                    5_000, "1234") for slug in slugs}
    offers = {model: tuple(Offer(model, providers[slug], model.split("/")[-1],
                                 fallback_prices(), None) for slug in slugs)
              for model in models}
    return SimpleNamespace(providers=providers, offers=offers)


def used(db, pairs: dict[tuple[str, str], int]) -> None:
    """Requests served in the last 7 days, as the usage read model holds them."""
    stamp = recorded_at(FrozenClock().now())
    with db.transaction() as cur:
        for (slug, model), count in pairs.items():
            for _ in range(count):
                cur.execute("INSERT INTO requests (request_id, account_id, key_id, endpoint, "
                            "requested_model, stream, status, hold_micros, provider, "
                            "served_model, created_at) VALUES (%s, 'acct_1', 'key_1', 'chat', "
                            "%s, 0, 'settled', 0, %s, %s, %s)",
                            (uuid.uuid4().hex, model, slug, model, stamp))


class Recorder:
    """Routing health and incidents as the prober sees them: what they were told."""

    def __init__(self) -> None:
        self.observed: list[tuple] = []
        self.probes: list[tuple] = []

    def observe(self, *args, probe: bool = False) -> None:
        self.observed.append((*args, probe))

    def probe_result(self, provider: str, model: str, ok: bool) -> None:
        self.probes.append((provider, model, ok))


class Counting:
    """The real provider client, counting attempts on the wire (send to close)."""

    def __init__(self, client: AiohttpProviderClient) -> None:
        self.client, self.now, self.peak = client, 0, 0

    async def send(self, target, path, body, headers=None):
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            upstream = await self.client.send(target, path, body, headers)
        except BaseException:
            self.now -= 1
            raise
        close = upstream.close
        upstream.close = lambda: (setattr(self, "now", self.now - 1), close())
        return upstream


def prober(db, table, client, recorder=None) -> Prober:
    recorder = recorder or Recorder()
    return Prober(lambda: table, client, lambda slug: PLATFORM_KEY, recorder, recorder,
                  SqlProbeStore(db), FrozenClock(), retry_base_s=0)


def with_client(work, wrap=lambda client: client):
    """Run ``work(client)`` on a fresh event loop with a real provider client."""
    async def main():
        client = AiohttpProviderClient()
        try:
            return await work(wrap(client))
        finally:
            await client.close()

    return asyncio.run(main())


def test_with_100_pairs_due_never_more_than_20_probes_are_in_flight(sqlite_db, fake_openai):
    models = [f"acme/m-{i:03d}" for i in range(100)]
    used(sqlite_db, {(SLUG, m): 200 - i for i, m in enumerate(models)})
    fake_openai.default = Behaviour(delay_before_headers=0.05)
    recorder = Recorder()

    async def run(client):
        probes = prober(sqlite_db, catalog(fake_openai.base_url, models), client, recorder)
        first = await probes.run_due()
        wake = probes.next_due_at - probes.now()
        return first, await probes.run_due(), client.peak, wake

    first, second, peak, wake = with_client(run, Counting)
    assert peak == 20  # the limit was reached and never passed
    assert wake == 300  # the critical pairs' interval: the scheduler wakes for them
    assert len(first) == 100 and all(r.ok and r.attempts == 1 for r in first)
    assert second == []  # nothing is due again until its tier's interval has passed
    tiers = [r.tier for r in first]
    assert (tiers.count("critical"), tiers.count("popular"), tiers.count("standard")) \
        == (5, 20, 75)
    sent = fake_openai.chat_requests()
    assert len(sent) == 100
    limits = {r.json["model"]: r.json["max_tokens"] for r in sent}
    assert limits["m-000"] == 10 and limits["m-024"] == 10 and limits["m-025"] == 5
    assert {r.headers["authorization"] for r in sent} == {f"Bearer {PLATFORM_KEY}"}
    assert len(SqlProbeStore(sqlite_db).last_results()) == 100
    # Fed to routing health as probes (no in-flight change, no traffic for incidents), and
    # to incidents as probes; no request record is written (customer usage holds none).
    assert len(recorder.observed) == 100 and all(o[-1] is True for o in recorder.observed)
    assert len(recorder.probes) == 100
    with sqlite_db.transaction() as cur:
        cur.execute("SELECT COUNT(*) FROM requests")
        assert cur.fetchone()[0] == sum(200 - i for i in range(100))


def test_a_failed_probe_is_retried_up_to_3_times_then_recorded_once(sqlite_db, fake_openai):
    fake_openai.script(*[Behaviour(status=503)] * 3, Behaviour(),
                       *[Behaviour(status=503)] * 4, Behaviour(status=401))
    table = catalog(fake_openai.base_url, ["acme/chat-1"])

    async def run(client):
        probes = prober(sqlite_db, table, client)
        return [await probes.probe_now(SLUG, "acme/chat-1") for _ in range(3)]

    recovered, failed, refused = with_client(run)
    assert (recovered.ok, recovered.attempts, recovered.status) == (True, 4, 200)
    assert (failed.ok, failed.attempts, failed.status, failed.error_class) \
        == (False, 4, 503, "server_error")
    # A bad credential is not retried: another try cannot fix it.
    assert (refused.ok, refused.attempts, refused.error_class) == (False, 1, "auth")
    assert len(fake_openai.chat_requests()) == 9
    with sqlite_db.transaction() as cur:  # one row a probe, not one an attempt
        cur.execute("SELECT ok, status, error_class, attempts FROM probe_results")
        assert sorted(cur.fetchall(), key=str) == sorted(
            [(1, 200, None, 4), (0, 503, "server_error", 4), (0, 401, "auth", 1)], key=str)


def test_a_probe_past_its_timeout_is_a_timeout(sqlite_db, fake_openai):
    fake_openai.default = Behaviour(delay_before_headers=1.0)
    table = catalog(fake_openai.base_url, ["acme/chat-1"])
    quick = Tier("test", 300, 0.2, 5, 0)  # the tiers' 30-60 s, scaled down

    async def run(client):
        began = time.monotonic()
        result = await prober(sqlite_db, table, client).probe(
            table.offers["acme/chat-1"][0], quick)
        return result, time.monotonic() - began

    result, took = with_client(run)
    assert (result.ok, result.error_class, result.status, result.attempts) \
        == (False, "timeout", None, 4)
    assert took < 4 * 1.0  # each attempt cut at 0.2 s, not left to the upstream


def result(model, at, ok, slug=SLUG) -> ProbeResult:
    return ProbeResult(slug, model, at, ok, 200 if ok else 503, 12.0,
                       None if ok else "server_error", 1, "standard")


def test_the_store_keeps_latest_results_daily_counts_and_purges_by_age(db):
    store, now = SqlProbeStore(db), 1_800_000_000.0
    store.record(result("m", now - 40 * DAY, True))
    store.record(result("m", now - 100, False))
    store.record(result("m", now - 200, True))  # older, recorded later: not the latest
    store.record(result("n", now - 10, True, slug="other"))
    assert store.last_results() == {(SLUG, "m"): LastResult(now - 100, False),
                                    ("other", "n"): LastResult(now - 10, True)}
    assert store.window("m", now - DAY) == {SLUG: (2, 1)}
    assert store.window("m", now - 60 * DAY) == {SLUG: (3, 2)}
    today = int(now // DAY)  # now is 8 h into its UTC day: the three recent ones share it
    assert store.daily("m", now - 89 * DAY) == {SLUG: {today - 40: (1, 1), today: (2, 1)}}

    assert store.purge(now) == 1  # the 40-day-old raw row; its day stays for 90 days
    assert store.window("m", now - 60 * DAY) == {SLUG: (2, 1)}
    assert store.daily("m", now - 89 * DAY) == {SLUG: {today - 40: (1, 1), today: (2, 1)}}
    store.purge(now + 95 * DAY)
    assert store.daily("m", now - 89 * DAY) == {} and store.last_results() == {}


def test_one_worker_holds_the_probe_lease_until_it_expires(db):
    store, now = SqlProbeStore(db), 1_800_000_000.0
    assert store.lead("w1", now, 600)
    assert not store.lead("w2", now + 1, 600)
    assert store.lead("w1", now + 2, 600)  # renewed
    assert not store.lead("w2", now + 601, 600)
    assert store.lead("w2", now + 603, 600)  # w1 stopped renewing: taken over
    assert not store.lead("w1", now + 604, 600)


def test_uptime_over_24h_7d_30d_and_90_days_of_daily_history(sqlite_db):
    clock, store = FrozenClock(), SqlProbeStore(sqlite_db)
    now = clock.now().timestamp()
    for at, ok in [(now - 60, True), (now - 120, True), (now - 180, True), (now - 240, False),
                   *[(now - 5 * DAY, False)] * 4, *[(now - 20 * DAY, True)] * 8,
                   (now - 60 * DAY, True)]:
        store.record(result("acme/chat-1", at, ok))
    table = catalog("http://127.0.0.1:9/v1", ["acme/chat-1"], slugs=(SLUG, "spare"))
    probes = Prober(lambda: table, None, None, None, None, store, clock)

    report = probes.uptime("acme/chat-1")
    first, spare = report["providers"]
    assert first["uptime"] == {"24h": 75.0, "7d": 37.5, "30d": 68.75}
    assert first["probes"] == {"24h": 4, "7d": 8, "30d": 16}
    assert (spare["provider"], set(spare["uptime"].values())) == ("spare", {None})
    assert report["uptime"] == first["uptime"]  # the model: its best provider
    assert len(first["daily"]) == 90 and first["daily"][-1]["date"] == \
        clock.now().date().isoformat()
    by_date = {d["date"]: d for d in first["daily"] if d["probes"]}
    assert sum(d["probes"] for d in by_date.values()) == 17  # the 60-day-old one included
    assert {d["uptime"] for d in by_date.values()} >= {0.0, 100.0}
    assert all(d["uptime"] is None for d in spare["daily"])


def test_probe_results_feed_routing_health_and_three_failed_probes_open_one_incident(
        tmp_path, fake_openai):
    gw, schema = open_gateway("sqlite", tmp_path)
    model = "acme/chat-1"
    table = catalog(fake_openai.base_url, [model])
    fake_openai.default = Behaviour(status=503)
    health = gw.routing.health

    def probe(times: int) -> None:
        async def run(client):
            probes = Prober(lambda: table, client, lambda slug: PLATFORM_KEY, health,
                            gw.incidents, SqlProbeStore(gw.db), gw.clock, retry_base_s=0)
            for _ in range(times):
                await probes.probe_now(SLUG, model)

        with_client(run)
        assert health.wait_idle()

    try:
        assert health.admit(SLUG, "acme/other").allowed  # a customer's attempt, under way
        probe(2)
        assert gw.incidents.open_pairs() == {}
        probe(1)
        [(pair, incident)] = gw.incidents.open_pairs().items()
        # Counted once each: 3 failures are `medium` (not 6 through a second path).
        assert (pair, incident.severity, incident.cause) == ((SLUG, model), "medium", "probes")
        view = gw.routing.board.view(SLUG, model)
        assert (view.samples, view.successes) == (3, 0)  # one sample a probe, not an attempt
        assert health.status(SLUG, model) == "healthy"  # 3 in a row: breaker still closed
        probe(2)  # the 5th failure in a row opens the pair's breaker (3.3)
        assert health.status(SLUG, model) == "down"
        # Probes were never admitted, so the customer's attempt is still counted in flight.
        assert health.signals(SLUG, "acme/other").in_flight == 1
        fake_openai.default = Behaviour()
        probe(3)
        assert gw.incidents.open_pairs() == {}  # 3 successful probes resolve it (3.4)
    finally:
        close_gateway(gw, schema)
