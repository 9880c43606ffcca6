"""Discovery sync (5.2) through the served app: POST/GET /admin/catalog/sync, the synced
models in GET /v1/models, failures that keep rows, delisting, admin prices, staleness.

Until bootstrap wires sync in, ``served`` here wires it the way bootstrap will (``wire``)
and mounts admin_sync.ROUTES under the admin guard as app.py will.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from conftest import ServedGateway, close_gateway, open_gateway
from fakes.listing_server import FakeListing, ListingFault, synthetic_models

from adapters.clock import FrozenClock, SystemClock
from application.catalog_sync import Staleness
from e2e.support import assert_error, customer

INTERVAL = 1800.0
SLUG = "openrouter"  # the shipped default: its listing dialect carries prices and limits


def wire(gw) -> None:
    """The gateway's own sync, with no cached stale answer."""
    gw.catalog_view.stale_check = Staleness(gw.catalog_view.reader.sync.stale_providers,
                                            gw.catalog_sync, INTERVAL, clock=SystemClock(),
                                            ttl_s=0)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedGateway]:
    gw, schema = open_gateway("sqlite", tmp_path)
    wire(gw)
    served = ServedGateway(gw)
    yield served
    served.close()
    close_gateway(gw, schema)


@pytest.fixture(scope="module")
def listing_server():
    with FakeListing(name="catalog-sync-http") as fake:
        yield fake


@pytest.fixture
def fake(listing_server):
    listing_server.reset()
    listing_server.models = synthetic_models(6)
    yield listing_server
    listing_server.reset()


@pytest.fixture
def gateway_with_provider(served, fake):
    served.register_provider(SLUG, fake.base_url_for("openrouter"))
    return served


def sync(served, **body) -> dict:
    response = served.admin("POST", "/admin/catalog/sync", json=body)
    assert response.status_code == 200, response.text
    return {row["provider"]: row for row in response.json()["data"]}


def models(served, key: str):
    response = served.http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response, {m["id"]: m for m in response.json()["data"]}


def test_synced_models_are_listed_with_their_metadata_and_listing_calls_no_provider(
        gateway_with_provider, fake):
    served = gateway_with_provider
    counts = sync(served)[SLUG]
    assert (counts["added"], counts["failed"], counts["error"]) == (6, False, None)
    key = customer(served).key
    calls = len(fake.requests)
    for _ in range(3):
        response, listed = models(served, key)
        assert served.http.get("/v1/models/synth-01/model-1",
                               headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert len(fake.requests) == calls  # 5.2: a warm catalog makes zero provider calls
    model = listed["synth-01/model-1"]
    assert (model["name"], model["context_length"], model["max_output_tokens"]) == (
        "Synth 1: Model 1", 8192, 2048)
    assert model["pricing"] == {"input": "0.02", "output": "0.08", "source": "explicit"}
    assert model["capabilities"]["tools"] is True and model["modalities"]["input"] == ["text"]
    assert [p["slug"] for p in model["providers"]] == [SLUG]
    assert "x-gatewayz-catalog-stale" not in response.headers
    status = served.admin("GET", "/admin/catalog/sync").json()["data"]
    assert [(s["provider"], s["models"], s["stale"], s["last_run_id"]) for s in status] == [
        (SLUG, 6, False, counts["run_id"])]


def test_failures_keep_the_rows_and_a_delisted_model_is_not_found(gateway_with_provider,
                                                                   fake):
    served = gateway_with_provider
    sync(served)
    key = customer(served).key
    for fault in (ListingFault(status=500), ListingFault(empty=True)):
        fake.script(fault)
        failed = sync(served, provider=SLUG)[SLUG]
        assert failed["failed"] and failed["removed"] == 0
        assert "synth-05/model-5" in models(served, key)[1]  # still listed and served
    assert "empty listing" in served.admin("GET", "/admin/catalog/sync").json()[
        "data"][0]["last_error"]
    fake.models = synthetic_models(5)  # synth-05/model-5 disappears from a good listing
    assert sync(served)[SLUG]["removed"] == 1
    assert "synth-05/model-5" not in models(served, key)[1]
    gone = served.http.get("/v1/models/synth-05/model-5",
                           headers={"Authorization": f"Bearer {key}"})
    assert_error(gone, 404, "model_not_found")
    chat = served.http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                            json={"model": "synth-05/model-5",
                                  "messages": [{"role": "user", "content": "hi"}]})
    assert_error(chat, 404, "model_not_found")


def test_admin_prices_are_never_overwritten_by_a_sync(gateway_with_provider, fake):
    served = gateway_with_provider
    sync(served)
    served.set_price("synth-02/model-2", SLUG, input_price="7", output_price="8",
                     native_model_id="synth-02/model-2")
    fake.models[2]["pricing"] = {"prompt": "0.000001", "completion": "0.000002"}
    assert sync(served)[SLUG]["changed"] == 1
    key = customer(served).key
    assert models(served, key)[1]["synth-02/model-2"]["pricing"] == {
        "input": "7", "output": "8", "source": "explicit"}
    assert models(served, key)[1]["synth-03/model-3"]["pricing"]["input"] == "0.04"


def test_a_provider_without_success_for_two_intervals_marks_the_listing_stale(
        gateway_with_provider, fake):
    served = gateway_with_provider
    sync_use_case = served.gateway.catalog_sync
    sync_use_case.clock = FrozenClock(SystemClock().now() - timedelta(seconds=2 * INTERVAL + 5))
    sync(served)  # succeeded, but two intervals and 5 s ago
    key = customer(served).key
    assert models(served, key)[0].headers["x-gatewayz-catalog-stale"] == "true"
    assert served.admin("GET", "/admin/catalog/sync").json()["data"][0]["stale"] is True
    sync_use_case.clock = SystemClock()
    fake.script(ListingFault(status=503))
    sync(served)  # a failure now does not make it fresh
    assert models(served, key)[0].headers["x-gatewayz-catalog-stale"] == "true"
    sync(served)
    assert "x-gatewayz-catalog-stale" not in models(served, key)[0].headers


def test_the_sync_command_checks_its_body_and_needs_an_admin(gateway_with_provider):
    served = gateway_with_provider
    assert_error(served.admin("POST", "/admin/catalog/sync", json={"provider": "nobody"}),
                 404, "not_found")
    assert_error(served.admin("POST", "/admin/catalog/sync", json={"provider": 5}),
                 400, "invalid_request")
    key = customer(served).key
    denied = served.http.post("/admin/catalog/sync", headers={"Authorization": f"Bearer {key}"})
    assert denied.status_code in (401, 403)
    assert served.http.get("/admin/catalog/sync").status_code == 401


def test_sync_events_are_published_with_their_run_id_and_valid_against_their_schemas(
        gateway_with_provider, fake):
    served = gateway_with_provider
    response = served.admin("POST", "/admin/catalog/sync")
    run = response.json()["data"][0]["run_id"]
    fake.script(ListingFault(status=500))
    failed = sync(served)[SLUG]["run_id"]
    schemas = {(s["type"], s["schema_version"]): s["data_schema"]
               for s in served.admin("GET", "/audit/schemas").json()["data"]}
    page = served.admin("GET", "/audit/events",
                        params={"context": "catalog", "from_position": 1, "limit": 1000})
    events = [e for e in page.json()["data"] if e["type"].startswith("ProviderListing.")]
    assert [(e["type"], e["data"].get("run_id")) for e in events] == [
        ("ProviderListing.Opened", None), ("ProviderListing.Synced", run),
        ("ProviderListing.SyncFailed", failed)]
    for event in events:
        schema = schemas[(event["type"], event["schema_version"])]
        jsonschema.Draft202012Validator(schema).validate(event["data"])
        assert set(event["data"]) == set(schema["properties"])
    assert events[0]["data"] == {"provider": SLUG}
    # The admin's envelope reaches events saved from the command's own event loop (11.1).
    assert events[1]["actor"]["kind"] == "staff"
    assert events[1]["correlation_id"] == response.headers["x-request-id"]
    assert events[1]["data"]["listed"] == 6 and len(events[1]["data"]["added"]) == 6
