"""Hugging Face enrichment (5.6) through the served app: a synced model whose listing names a
Hugging Face id shows ``huggingface`` in GET /v1/models and GET /v1/models/{id}; with the
Hub answering 500, the listing is still 200 and keeps the last values; listings never call
the Hub. The gateway reads GATEWAYZ_HF_BASE_URL / GATEWAYZ_HF_ALLOW_PRIVATE at start."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ServedGateway, close_gateway, open_gateway
from fakes.listing_server import FakeListing, ListingFault, synthetic_models

from e2e.support import customer

SLUG = "openrouter"
LLAMA = "meta-llama/Llama-3.3-70B-Instruct"
ENRICHED, PLAIN = "synth-01/model-1", "synth-02/model-2"
EXPECTED = {"id": LLAMA, "downloads": 562_113, "likes": 2_468, "parameters": 70_553_706_496,
            "pipeline_tag": "text-generation", "author": "meta-llama", "license": "llama3.3"}


@pytest.fixture(scope="module")
def servers():
    # Two fakes: the provider's listing and the Hub, so the Hub can be down on its own.
    with FakeListing(name="hf-http-listing") as listing, FakeListing(name="hf-http-hub") as hub:
        yield listing, hub


@pytest.fixture
def fake(servers):
    listing, hub = servers
    for each in servers:
        each.reset()
    listing.models = synthetic_models(3)
    listing.models[1]["hugging_face_id"] = LLAMA  # synth-01/model-1
    yield listing
    for each in servers:
        each.reset()


@pytest.fixture
def hub(servers, fake):
    return servers[1]


@pytest.fixture
def served(tmp_path: Path, fake, hub, monkeypatch) -> Iterator[ServedGateway]:
    monkeypatch.setenv("GATEWAYZ_HF_BASE_URL", hub.hf_base_url)
    monkeypatch.setenv("GATEWAYZ_HF_ALLOW_PRIVATE", "1")  # the fake Hub is on 127.0.0.1
    gw, schema = open_gateway("sqlite", tmp_path)
    served = ServedGateway(gw)
    served.register_provider(SLUG, fake.base_url_for("openrouter"))
    response = served.admin("POST", "/admin/catalog/sync", json={"provider": SLUG})
    assert response.status_code == 200 and response.json()["data"][0]["added"] == 3
    yield served
    served.close()
    close_gateway(gw, schema)


def enrich(served, max_age_s: float | None = None) -> dict:
    """One run of the maintenance job, from the test's own event loop."""
    return asyncio.run(served.gateway.hf.run_once(max_age_s))


def listed(served, key: str) -> dict[str, dict]:
    response = served.http.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return {m["id"]: m for m in response.json()["data"]}


def hub_calls(hub) -> int:
    return sum(1 for r in hub.requests if r.path.startswith("/hf/"))


def test_a_synced_model_with_a_hugging_face_id_is_enriched(served, hub):
    key = customer(served).key
    assert "huggingface" not in listed(served, key)[ENRICHED]  # not fetched yet: omitted
    assert enrich(served)["failed"] == 0
    # Only the model with an id was asked for (the job's start-up pass may have done it).
    assert {r.path for r in hub.requests} == {f"/hf/api/models/{LLAMA}"}
    calls = hub_calls(hub)
    models = listed(served, key)
    assert models[ENRICHED]["huggingface"] == EXPECTED
    assert "huggingface" not in models[PLAIN]
    one = served.http.get(f"/v1/models/{ENRICHED}", headers={"Authorization": f"Bearer {key}"})
    assert one.status_code == 200 and one.json()["huggingface"] == EXPECTED
    full = served.http.get("/v1/models", params={"view": "full"},
                           headers={"Authorization": f"Bearer {key}"}).json()["data"]
    assert [m["huggingface"] for m in full if m["id"] == f"{ENRICHED}@{SLUG}"] == [EXPECTED]
    assert hub_calls(hub) == calls  # listings read memory, never the Hub


def test_with_the_hub_down_listings_are_200_and_keep_the_last_enrichment(served, hub):
    key = customer(served).key
    enrich(served)
    hub.default = ListingFault(status=500)  # every Hub request from now on
    calls = hub_calls(hub)
    counts = enrich(served, max_age_s=0)  # a refresh that fails
    assert (counts["due"], counts["failed"]) == (1, 1) and hub_calls(hub) == calls + 1
    for _ in range(3):
        assert listed(served, key)[ENRICHED]["huggingface"] == EXPECTED
    # A sync of the catalog does not wait on the Hub either.
    response = served.admin("POST", "/admin/catalog/sync", json={"provider": SLUG})
    assert response.status_code == 200 and not response.json()["data"][0]["failed"]
    assert listed(served, key)[ENRICHED]["huggingface"] == EXPECTED
