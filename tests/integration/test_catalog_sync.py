"""Discovery sync (5.2) at the service level: a real Gateway on SQLite and PostgreSQL, a
local FakeListing, and the wiring bootstrap will do (``wire`` below, until it does)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fakes.listing_server import FakeListing, ListingFault, claude, synthetic_models
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.clock import FrozenClock
from application.catalog_sync import CatalogSync, Staleness, run_forever
from domain.catalog_sync import CHUNK, ProviderListing, applied, canonical_for, chunks, diff
from domain.errors import DomainError
from projections.catalog_sync import SyncQueries
from projections.verify import verify

ADMIN = "usr_integration-admin"
KEY = "sk-listing-credential-5678"
INTERVAL = 1800.0


@pytest.fixture(params=("sqlite", "postgres"))
def backend(request) -> str:  # overrides conftest's: the stores sync runs on in production
    return request.param


@pytest.fixture(scope="module")
def server():
    with FakeListing(name="catalog-sync") as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    yield server
    server.reset()


def wire(gw, clock=None, exclude=frozenset()):
    """The gateway's own sync as bootstrap wires it, with a test clock, exclusions and no
    cached stale answer."""
    gw.catalog_sync = CatalogSync(gw.stores.catalog, gw.vault, gw.catalog_view,
                                  gw.projector.wait_for, clock=clock or FrozenClock(),
                                  exclude=exclude)
    gw.catalog_view.stale_check = Staleness(gw.catalog_view.reader.sync.stale_providers,
                                            gw.catalog_sync, INTERVAL, ttl_s=0)
    return gw.catalog_sync


def register(gw, fake, slug="openrouter", dialect="openrouter", **extra):
    gw.catalog.register_provider({"slug": slug, "base_url": fake.base_url_for(dialect),
                                  "allow_private": True, "credential": KEY, **extra}, ADMIN)


def catalog_events(gw):
    app = gw.stores.catalog
    return list(map(app.mapper.to_domain_event,
                    app.recorder.select_notifications(start=1, limit=1_000_000)))


def listing_events(gw):
    app = gw.stores.catalog
    events = map(app.mapper.to_domain_event,
                 app.recorder.select_notifications(start=1, limit=1_000_000))
    return [e for e in events if type(e).__qualname__.startswith("ProviderListing.")]


def rows(gw):
    return {(r.provider, r.model_id): r for r in SyncQueries(gw.db).synced()}


@pytest.fixture
def synced(gateway, fake):
    """openrouter (the shipped default, so its OpenRouter dialect with prices) on the fake."""
    sync = wire(gateway)
    register(gateway, fake)
    fake.models = synthetic_models(20)
    return gateway, sync


def test_a_sync_adds_the_listed_models_with_their_metadata_and_prices(synced, fake):
    gw, sync = synced
    result = sync.sync_now()
    assert result["openrouter"] | {"run_id": None} == {
        "run_id": None, "added": 20, "changed": 0, "removed": 0, "listed": 20, "skipped": 0,
        "failed": False, "error": None}
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"
    offer = gw.catalog_view.offers_for("synth-03/model-3")[0]
    assert (offer.provider.slug, offer.native_model_id, offer.source) == (
        "openrouter", "synth-03/model-3", "explicit")
    assert (str(offer.prices.input), str(offer.prices.output)) == ("0.04", "0.16")
    meta = gw.catalog_view.snapshot.meta["synth-03/model-3"]
    assert (meta.name, meta.context_length, meta.input_modalities) == (
        "Synth 3: Model 3", 4096 * 4, ("text",))
    assert "tools" in meta.capabilities and offer.max_output_tokens == 2048
    status = SyncQueries(gw.db).status()
    assert status[0]["provider"] == "openrouter" and status[0]["models"] == 20
    assert status[0]["last_run_id"] == result["openrouter"]["run_id"]


def test_changes_and_removals_are_recorded_and_the_removed_model_is_no_longer_served(
        synced, fake):
    gw, sync = synced
    sync.sync_now()
    fake.models = synthetic_models(19) + synthetic_models(1, start=500)  # 19 out, 500 in
    fake.models[0]["pricing"]["prompt"] = "0.000009"
    counts = sync.sync_now()["openrouter"]
    assert (counts["added"], counts["changed"], counts["removed"]) == (1, 1, 1)
    assert ("openrouter", "synth-19/model-19") not in rows(gw)
    assert gw.catalog_view.offers_for("synth-19/model-19") == []
    assert str(gw.catalog_view.offers_for("synth-00/model-0")[0].prices.input) == "9"
    last = listing_events(gw)[-1]
    assert (last.removed, [e["model_id"] for e in last.added]) == (
        ["synth-19/model-19"], ["synth-00/model-500"])
    delisted = [e for e in catalog_events(gw) if type(e).__qualname__ == "Model.Delisted"]
    assert [(e.provider, e.sync_run_id) for e in delisted] == [
        ("openrouter", counts["run_id"])]  # 5.2: the removal is a Model.Delisted event
    again = sync.sync_now()["openrouter"]  # nothing new: a success without a change
    assert (again["added"], again["changed"], again["removed"], again["failed"]) == (
        0, 0, 0, False)
    assert listing_events(gw)[-1].run_id == again["run_id"]


@pytest.mark.parametrize("fault, error", [
    (ListingFault(status=500), "HTTP 500"),
    (ListingFault(empty=True), "empty listing"),
    (ListingFault(body=b"{not json"), "malformed JSON"),
])
def test_a_failed_or_empty_listing_keeps_the_previous_rows(synced, fake, fault, error):
    gw, sync = synced
    sync.sync_now()
    before = rows(gw)
    fake.script(fault)
    counts = sync.sync_now()["openrouter"]
    assert counts["failed"] and error in counts["error"] and counts["removed"] == 0
    assert rows(gw) == before and gw.catalog_view.offers_for("synth-19/model-19")
    failed = listing_events(gw)[-1]
    assert type(failed).__name__ == "SyncFailed" and failed.run_id == counts["run_id"]
    status = SyncQueries(gw.db).status()[0]
    assert status["last_error"] == counts["error"] and status["last_failure_at"]
    assert status["last_success_at"] <= status["last_failure_at"]


def test_admin_prices_and_metadata_win_over_every_sync(synced, fake):
    gw, sync = synced
    sync.sync_now()
    gw.catalog.set_prices("synth-03/model-3", {
        "provider": "openrouter", "prices": {"input": "7", "output": "8"},
        "native_model_id": "synth-03/model-3", "context_length": 1000}, ADMIN)
    fake.models[3]["pricing"] = {"prompt": "0.000001", "completion": "0.000002"}
    fake.models[3]["context_length"] = fake.models[3]["top_provider"]["context_length"] = 9999
    assert sync.sync_now()["openrouter"]["changed"] == 1
    offer = gw.catalog_view.offers_for("synth-03/model-3")[0]
    assert (str(offer.prices.input), str(offer.prices.output)) == ("7", "8")
    assert gw.catalog_view.snapshot.meta["synth-03/model-3"].context_length == 1000
    synced_row = rows(gw)[("openrouter", "synth-03/model-3")]
    assert synced_row.prices == {"input": "1", "output": "2"}  # recorded, just not served


def test_stale_after_two_intervals_without_success(gateway, fake):
    clock = FrozenClock()
    sync = wire(gateway, clock=clock)
    register(gateway, fake)
    gateway.catalog.register_provider({"slug": "together", "allow_private": True,  # 404s
                                       "base_url": f"http://127.0.0.1:{fake.port}/none/v1"},
                                      ADMIN)
    queries = SyncQueries(gateway.db)
    sync.sync_now()
    assert queries.stale_providers(clock.now(), INTERVAL) == ["together"]  # never succeeded
    clock.advance(2 * INTERVAL - 1)
    assert queries.stale_providers(clock.now(), INTERVAL) == ["together"]
    clock.advance(2)
    assert queries.stale_providers(clock.now(), INTERVAL) == ["openrouter", "together"]
    assert gateway.catalog_view.stale() is True
    gateway.catalog.set_enabled("together", False, "off", ADMIN)
    sync.sync_now()  # openrouter succeeds again; a disabled provider stops counting
    assert gateway.catalog_view.stale() is False


def test_every_event_carries_the_run_id_and_big_runs_are_chunked(synced, fake):
    gw, sync = synced
    fake.models = synthetic_models(CHUNK * 2 + 7)
    run = sync.sync_now()["openrouter"]["run_id"]
    fake.script(ListingFault(status=401))
    failed = sync.sync_now()["openrouter"]["run_id"]
    events = listing_events(gw)
    assert [type(e).__name__ for e in events] == ["Opened", "Synced", "Synced", "Synced",
                                                  "SyncFailed"]
    assert {e.run_id for e in events[1:4]} == {run} and events[4].run_id == failed
    assert [len(e.added) for e in events[1:4]] == [CHUNK, CHUNK, 7]


def test_targets_exclusion_and_one_provider(gateway, fake):
    sync = wire(gateway, exclude=frozenset({"together"}))
    register(gateway, fake)
    register(gateway, fake, slug="together", dialect="openai")
    register(gateway, fake, slug="acme", dialect="openai")  # no family, bare ids: skipped
    fake.models = [{"id": "plain-model"}]
    assert [t.slug for t in sync.targets()] == ["acme", "openrouter"]
    for slug, code in (("together", "invalid_request"), ("nobody", "not_found")):
        with pytest.raises(DomainError) as refused:
            sync.sync_now(slug)
        assert refused.value.code == code
    assert fake.requests == []
    only = sync.sync_now("acme")
    assert list(only) == ["acme"] and "canonical" in only["acme"]["error"]


def test_native_ids_map_to_the_seed_names_and_provider_orgs(gateway, fake):
    sync = wire(gateway)
    register(gateway, fake, slug="anthropic", dialect="anthropic", protocol="anthropic")
    fake.anthropic_models = [claude("claude-sonnet-4-5", "Sonnet", "2025-09-29T00:00:00Z"),
                             claude("claude-new-9", "New", "2026-01-01T00:00:00Z")]
    assert sync.sync_now()["anthropic"]["added"] == 2
    assert set(m for _, m in rows(gateway)) == {"anthropic/claude-sonnet-4.5",
                                                "anthropic/claude-new-9"}
    assert canonical_for("gpt-4o", "openai", "openai", {}) == "openai/gpt-4o"
    assert canonical_for("Meta-Llama/L-3", "openai", None, {}) == "meta-llama/l-3"
    assert canonical_for("llama-3", "openai", None, {}) is None
    assert canonical_for("gatewayz/echo", "openai", None, {}) is None


def test_concurrent_runs_all_land_and_agree_with_the_listing(synced, fake):
    gw, sync = synced
    with ThreadPoolExecutor(3) as pool:  # each saves or, beaten, diffs against the winner
        results = list(pool.map(lambda _: sync.sync_now(), range(3)))
    assert all(not r["openrouter"]["failed"] for r in results)
    assert sum(r["openrouter"]["added"] for r in results) == 20
    assert {m for _, m in rows(gw)} == {m["id"] for m in fake.models}


def test_the_job_skips_a_provider_synced_within_half_an_interval(synced, fake):
    gw, sync = synced  # a frozen clock: every later pass finds the first run too recent

    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(run_forever(sync, interval_s=0.05), 0.5))
    assert len(fake.requests) == 1 and len(rows(gw)) == 20


def test_a_rebuild_writes_the_same_rows(synced, fake):
    gw, sync = synced
    sync.sync_now()
    fake.models = synthetic_models(10, start=5)
    sync.sync_now()
    reports = verify(gw.config, gw.stores, gw.db)
    assert [r.table for r in reports if not r.match] == []
    assert {r.table: r.live_rows for r in reports}["synced_models"] == 10


def test_ten_thousand_models_sync_in_reasonable_time(synced, fake, backend):
    gw, sync = synced
    fake.models = synthetic_models(10_000)
    started = time.perf_counter()
    assert sync.sync_now()["openrouter"]["added"] == 10_000
    first = time.perf_counter() - started
    fake.models[0]["name"] = "renamed"
    started = time.perf_counter()
    assert sync.sync_now()["openrouter"]["changed"] == 1
    second = time.perf_counter() - started
    assert len(gw.catalog_view.model_ids()) >= 10_000
    print(f"\n10k sync on {backend}: first {first:.2f}s, one change {second:.2f}s")
    assert first < 60 and second < 30


listings = st.dictionaries(  # model id -> entry; few ids, so runs add, change and remove
    st.sampled_from([f"o/m{i}" for i in range(12)]),
    st.fixed_dictionaries({"name": st.sampled_from(["a", "b", None]),
                           "prices": st.none() | st.just({"input": "1", "output": "2"})}),
    max_size=12).map(lambda d: {m: {**e, "model_id": m} for m, e in d.items()})


@settings(max_examples=300, deadline=None)
@given(listings, listings, st.integers(1, 5))
def test_applying_a_runs_diff_to_the_previous_state_gives_the_new_listing(before, after, size):
    added, changed, removed = diff(before, after)
    assert applied(before, added, changed, removed) == after
    state, parts = before, list(chunks(added, changed, removed, size))
    for part in parts:  # each part alone is a valid step: a batch may stop between them
        assert sum(map(len, part)) <= size
        state = applied(state, *part)
    assert state == after and len(parts) >= 1 and diff(after, after) == ([], [], [])
    agg = ProviderListing(provider="p")  # the aggregate, live and replayed from its events
    agg.record("r1", before, "t1")
    agg.record("r2", after, "t2")
    replayed = None
    for event in agg.collect_events():
        replayed = event.mutate(replayed)
    assert agg.models == replayed.models == after
