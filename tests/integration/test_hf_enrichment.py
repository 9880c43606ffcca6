"""Hugging Face enrichment (spec 5.6) against the fake Hub API and real stores: values stored
(SQLite and PostgreSQL) and served from memory; with the Hub down or unreachable the last
values stay; a changed id drops the old values; runs are bounded, oldest first, never more
than 4 fetches in flight; workers share the table; a listing never waits on a run."""

from __future__ import annotations

import asyncio
import socket

import pytest
from conftest import POSTGRES_URL
from fakes.listing_server import FakeListing, ListingFault, hf_defaults

from adapters.clock import FrozenClock
from adapters.hf_store import SqlHfStore
from adapters.persistence.database import open_database
from adapters.persistence.migrate import migrate
from adapters.persistence.store_config import StoreConfig
from application.hf_enrichment import DAY_S, RETRY_S, Enricher, HubFetcher, run_forever

LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
MODEL = "meta-llama/llama-3.3-70b-instruct"
EXPECTED = {"id": LLAMA, "downloads": 562_113, "likes": 2_468, "parameters": 70_553_706_496,
            "pipeline_tag": "text-generation", "author": "meta-llama", "license": "llama3.3"}


def migrated(request, tmp_path, kind: str):
    if kind == "sqlite":
        database = open_database(StoreConfig.sqlite(str(tmp_path / "events.sqlite")))
    else:
        database = open_database(StoreConfig.from_url(POSTGRES_URL,
                                                      request.getfixturevalue("pg_schema")))
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


@pytest.fixture(scope="module")
def hub_server():
    with FakeListing(name="hf-enrichment") as fake:
        yield fake


@pytest.fixture
def hub(hub_server):
    hub_server.reset()
    yield hub_server
    hub_server.reset()


def enricher(db, hub, hf_ids, clock=None, **kw) -> Enricher:
    fetcher = HubFetcher(hub.hf_base_url, allow_private=True, timeout_s=2.0)
    return Enricher(SqlHfStore(db), lambda: dict(hf_ids), fetcher, clock or FrozenClock(), **kw)


def hub_calls(hub) -> int:
    return sum(1 for r in hub.requests if r.path.startswith("/hf/"))


def test_enrichment_is_stored_and_served_from_memory(db, hub):
    hf_ids = {MODEL: LLAMA, "nobody/gone": "nobody/gone"}  # the second is a 404 on the Hub
    job = enricher(db, hub, hf_ids)
    assert job.data(MODEL) is None and job.load() == 0
    counts = asyncio.run(job.run_once())
    assert counts == {"models": 2, "due": 2, "fetched": 1, "failed": 1, "enriched": 1}
    assert job.data(MODEL) == EXPECTED and job.data("nobody/gone") is None
    rows = {r.model_id: r for r in SqlHfStore(db).rows()}
    assert rows[MODEL].data == EXPECTED and rows[MODEL].failed_at is None
    assert rows["nobody/gone"].data is None and rows["nobody/gone"].failed_at is not None
    # Another worker (or a restart) loads the values without asking the Hub.
    calls = hub_calls(hub)
    other = enricher(db, hub, hf_ids)
    assert other.load() == 1 and other.data(MODEL) == EXPECTED
    assert asyncio.run(other.run_once())["due"] == 0  # fresh: nobody asks again today
    assert hub_calls(hub) == calls
    job.data(MODEL)["likes"] = -1  # a caller's copy: memory is not shared
    assert job.data(MODEL)["likes"] == 2_468


def test_hub_down_keeps_the_last_values_until_it_is_back(db, hub):
    clock = FrozenClock()
    job = enricher(db, hub, {MODEL: LLAMA}, clock)
    asyncio.run(job.run_once())
    fetched_at = SqlHfStore(db).rows()[0].fetched_at
    hub.default = ListingFault(status=500)
    clock.advance(DAY_S + 1)
    assert asyncio.run(job.run_once())["failed"] == 1
    assert job.data(MODEL) == EXPECTED  # 5.6: the last values, not an empty object
    row = SqlHfStore(db).rows()[0]
    assert (row.data, row.fetched_at, row.failed_at is not None) == (EXPECTED, fetched_at, True)
    # Unreachable (nothing listens) is the same: kept.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    down = Enricher(SqlHfStore(db), lambda: {MODEL: LLAMA},
                    HubFetcher(f"http://127.0.0.1:{port}", allow_private=True), clock)
    assert asyncio.run(down.run_once(max_age_s=0))["failed"] == 1
    assert down.data(MODEL) == EXPECTED
    # A failure is retried within hours, not a day; a success clears failed_at.
    hub.default = None
    hub.hf_models[LLAMA] = {**hf_defaults()[LLAMA], "likes": 3_000}
    assert asyncio.run(job.run_once())["due"] == 0
    clock.advance(RETRY_S + 1)
    assert asyncio.run(job.run_once())["fetched"] == 1
    assert job.data(MODEL)["likes"] == 3_000 and SqlHfStore(db).rows()[0].failed_at is None


def test_a_changed_hf_id_drops_the_old_values_until_the_new_one_is_fetched(sqlite_db, hub):
    hf_ids = {MODEL: LLAMA}
    job = enricher(sqlite_db, hub, hf_ids)
    asyncio.run(job.run_once())
    hf_ids[MODEL] = "meta-llama/Other"  # the provider now names another repository
    job = enricher(sqlite_db, hub, hf_ids)
    assert job.load() == 0 and job.data(MODEL) is None  # not another repo's stats
    hub.default = ListingFault(status=503)
    assert asyncio.run(job.run_once())["due"] == 1  # due at once, not in a day
    row = SqlHfStore(sqlite_db).rows()[0]
    assert (row.hf_id, row.data, row.fetched_at) == ("meta-llama/Other", None, None)


def test_runs_are_bounded_and_take_the_oldest_first(sqlite_db):
    clock = FrozenClock()
    seen: list[str] = []

    async def fetch(hf_id: str):
        seen.append(hf_id)
        return {**EXPECTED, "id": hf_id}

    hf_ids = {f"org/m-{i:02d}": f"org/M-{i:02d}" for i in range(25)}
    job = Enricher(SqlHfStore(sqlite_db), lambda: hf_ids, fetch, clock, max_per_run=10)
    for expected in (10, 10, 5, 0):
        assert asyncio.run(job.run_once())["due"] == expected
        clock.advance(60)
    assert sorted(seen) == sorted(hf_ids.values()) and len(seen) == 25  # each once
    seen.clear()
    clock.advance(DAY_S - 4 * 60 + 30)  # only the first run's ten are a day old now
    assert asyncio.run(job.run_once())["due"] == 10
    assert seen == [f"org/M-{i:02d}" for i in range(10)]  # the same ten: the oldest


def test_never_more_than_four_fetches_in_flight(sqlite_db):
    in_flight = peak = 0

    async def fetch(hf_id: str):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return {**EXPECTED, "id": hf_id}

    hf_ids = {f"org/m-{i}": f"org/M-{i}" for i in range(40)}
    job = Enricher(SqlHfStore(sqlite_db), lambda: hf_ids, fetch, FrozenClock())
    assert asyncio.run(job.run_once())["fetched"] == 40
    assert peak == 4


def test_a_listing_reads_memory_while_a_run_waits_on_the_hub(sqlite_db, hub):
    job = enricher(sqlite_db, hub, {MODEL: LLAMA})
    asyncio.run(job.run_once())
    hub.default = ListingFault(hang_s=1.0)

    async def during_a_slow_run():
        run = asyncio.create_task(job.run_once(max_age_s=0))
        await asyncio.sleep(0.2)
        assert not run.done()
        answer = job.data(MODEL)  # no await: the request path never waits on the Hub
        await run
        return answer

    assert asyncio.run(during_a_slow_run()) == EXPECTED


def test_rows_of_models_gone_for_thirty_days_are_purged(sqlite_db, hub):
    clock = FrozenClock()
    hf_ids = {MODEL: LLAMA, "org/gone": "org/Gone"}
    job = enricher(sqlite_db, hub, hf_ids, clock)
    asyncio.run(job.run_once())
    del hf_ids["org/gone"]  # delisted: no longer attempted
    for _ in range(31):
        clock.advance(DAY_S)
        asyncio.run(job.run_once())
    assert [r.model_id for r in SqlHfStore(sqlite_db).rows()] == [MODEL]


def test_the_job_survives_a_failed_run_and_keeps_checking(sqlite_db):
    calls = 0

    def hf_ids():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("catalog unreadable")
        return {MODEL: LLAMA}

    async def fetch(hf_id: str):
        return EXPECTED

    job = Enricher(SqlHfStore(sqlite_db), hf_ids, fetch, FrozenClock())

    async def a_few_checks():
        task = asyncio.create_task(run_forever(job, check_s=0.01))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if job.data(MODEL) is not None:
                break
        task.cancel()
        return job.data(MODEL)

    assert asyncio.run(a_few_checks()) == EXPECTED and calls >= 2
