"""When each model was first listed (catalog_models, migration 012) on every backend: the
Model.Listed event's own time, kept by later prices, rebuilds and the migration's replay."""

from __future__ import annotations

import io

from adapters.persistence.migrate import migrate
from entrypoints.http.models import catalog_models
from projections.base import stamp
from projections.catalog import CatalogQueries
from projections.rebuild import rebuild
from projections.verify import verify

ADMIN = "usr_integration-admin"
MODELS = ("acme/chat-1", "acme/chat-2", "zeta/mini")


def priced(gateway) -> None:
    gateway.catalog.register_provider({"slug": "up", "base_url": "http://127.0.0.1:9/v1",
                                       "allow_private": True}, ADMIN)
    for model_id in MODELS:
        gateway.catalog.set_prices(model_id, {"provider": "up",
                                              "prices": {"input": "1", "output": "2"}, "context_length": 128_000}, ADMIN)
    gateway.projector.run_until_idle()


def listed_events(gateway) -> dict[str, str]:
    """Model id -> the time of its Model.Listed event, read from the event store."""
    app = gateway.stores.catalog
    out = {}
    for note in app.recorder.select_notifications(start=1, limit=100_000):
        event = app.mapper.to_domain_event(note)
        if type(event).__qualname__ == "Model.Listed":
            out[event.model_id] = stamp(event.timestamp)
    return out


def rows(gateway, table: str) -> list[tuple]:
    with gateway.db.transaction() as cur:
        cur.execute(f"SELECT * FROM {table}")
        return sorted(tuple(str(v) for v in row) for row in cur.fetchall())


def test_a_model_is_listed_once_at_the_time_of_its_listed_event(gateway):
    priced(gateway)
    queries = CatalogQueries(gateway.db)
    first = queries.listed()

    gateway.catalog.set_prices("acme/chat-1", {"provider": "up",
                                               "prices": {"input": "3", "output": "4"}, "context_length": 128_000}, ADMIN)
    gateway.projector.run_until_idle()

    assert first == listed_events(gateway) and set(first) == set(MODELS)
    assert queries.listed() == first  # a later price is not a new listing
    assert queries.listed_at("zeta/mini") == first["zeta/mini"]
    assert queries.listed_at("acme/none") is None
    assert all(r.match for r in verify(gateway.config, gateway.stores, gateway.db))


def test_listing_times_survive_a_rebuild_of_the_catalog_and_of_everything(gateway):
    priced(gateway)
    before = rows(gateway, "catalog_models")

    for name in ("catalog", "all"):
        rebuild(gateway.config, gateway.stores, gateway.db, name, io.StringIO())
        assert rows(gateway, "catalog_models") == before
    assert all(r.match for r in verify(gateway.config, gateway.stores, gateway.db))


def test_a_store_from_before_migration_012_is_given_its_listing_times(gateway):
    priced(gateway)
    expected = {t: rows(gateway, t) for t in ("catalog_models", "providers", "model_prices")}
    with gateway.db.transaction() as cur:  # the read models as an older version left them
        cur.execute("DROP TABLE catalog_models")
        cur.execute("DELETE FROM schema_migrations WHERE version = '012_model_listing.sql'")

    assert migrate(gateway.db) == ["012_model_listing.sql"]
    gateway.projector.run_until_idle()

    assert {t: rows(gateway, t) for t in expected} == expected
    assert all(r.match for r in verify(gateway.config, gateway.stores, gateway.db))


def test_the_listing_shows_priced_models_by_id_with_their_listing_time(gateway):
    priced(gateway)
    times = listed_events(gateway)

    entries = catalog_models(gateway, None, {})

    assert [e["id"] for e in entries] == sorted(MODELS)  # no echo without a test key
    assert {e["id"]: e["created"] for e in entries} == times
    assert entries[0]["pricing"] == {"input": "1", "output": "2", "source": "explicit"}
    assert [p["slug"] for p in entries[0]["providers"]] == ["up"]
