"""Catalog views over HTTP (spec 5.1, 5.3-5.5): metadata, filters, the full view, limits,
provider administration (credential last 4 only, disable within a request) and the shipped
default providers."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from e2e.support import assert_error, chat_body, customer, post_chat

ID = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._:-]*$")


@pytest.fixture
def catalog(served, fake_openai):
    """Three models; acme/tools-1 on three providers, with tools; one cheap, one dear."""
    for slug in ("p-one", "p-two", "p-three"):
        served.register_provider(slug, fake_openai.base_url)
    for slug, price in (("p-one", "0.9"), ("p-two", "0.8"), ("p-three", "2")):
        served.set_price("acme/tools-1", slug, input_price=price, output_price="3",
                         capabilities=["tools", "streaming"])
    served.set_price("acme/plain-1", "p-one", input_price="0.5", output_price="1")
    served.set_price("acme/dear-1", "p-two", input_price="5", output_price="15",
                     capabilities=["tools"], context_length=200_000)
    return served


def models(served, **params) -> dict:
    answer = served.http.get("/v1/models", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_every_listed_model_carries_the_5_3_metadata_with_decimal_string_prices(catalog):
    data = models(catalog)["data"]

    assert [m["id"] for m in data] == ["acme/dear-1", "acme/plain-1", "acme/tools-1"]
    for model in data:
        assert ID.match(model["id"]) and model["name"] and model["context_length"] > 0
        assert model["modalities"]["input"] and model["modalities"]["output"]
        assert set(model["capabilities"]) >= {"tools", "streaming", "vision", "json_schema"}
        for price in model["pricing"].values():
            assert isinstance(price, str)
        Decimal(model["pricing"]["input"])
        assert model["pricing"]["source"] == "explicit"
        assert model["health_status"] in ("healthy", "degraded", "down")
        assert all("credential" not in str(p) for p in model["providers"])


def test_filters_select_what_they_name(catalog):
    tooled = models(catalog, capability="tools", max_input_price="1")["data"]
    assert [m["id"] for m in tooled] == ["acme/tools-1"]
    assert all(m["capabilities"]["tools"] for m in tooled)
    assert [m["id"] for m in models(catalog, min_context_length="150000")["data"]] == [
        "acme/dear-1"]
    assert [m["id"] for m in models(catalog, q="plain")["data"]] == ["acme/plain-1"]
    assert [m["id"] for m in models(catalog, provider="p-three")["data"]] == [
        "acme/tools-1"]
    by_price = [m["id"] for m in models(catalog, sort="price")["data"]]
    assert by_price == ["acme/plain-1", "acme/tools-1", "acme/dear-1"]


def test_the_full_view_lists_a_model_once_per_provider_and_the_default_once(catalog):
    default = [m["id"] for m in models(catalog)["data"]]
    full = [m["id"] for m in models(catalog, view="full")["data"]]

    assert len(default) == len(set(default))
    assert sorted(i for i in full if i.startswith("acme/tools-1@")) == [
        "acme/tools-1@p-one", "acme/tools-1@p-three", "acme/tools-1@p-two"]


@pytest.mark.parametrize("limit", ["0", "1001", "x"])
def test_a_limit_outside_1_to_1000_is_refused(catalog, limit):
    assert_error(catalog.http.get("/v1/models", params={"limit": limit}), 400,
                 "invalid_request", "limit")


def test_pages_follow_the_after_cursor(catalog):
    first = models(catalog, limit="2")
    rest = models(catalog, limit="2", after=first["last_id"])

    assert first["has_more"] is True and rest["has_more"] is False
    assert [m["id"] for m in first["data"] + rest["data"]] == [
        m["id"] for m in models(catalog)["data"]]


def test_admins_see_the_last_4_of_a_credential_and_rotating_it_changes_them(catalog):
    shown = catalog.admin("GET", "/admin/providers/p-one").json()
    assert shown["credential_last4"] == "1234" and "credential" not in shown

    rotated = catalog.admin("POST", "/admin/providers/p-one/credentials",
                            json={"credential": "sk-rotated-secret-9876"})

    assert rotated.json()["credential_last4"] == "9876"
    listed = {p["slug"]: p for p in catalog.admin("GET", "/admin/providers").json()["data"]}
    assert listed["openai"]["configured"] is False and listed["openai"]["enabled"] is False
    assert "credential" not in str(catalog.http.get("/v1/providers").json())


def test_disabling_a_model_s_only_provider_removes_it_and_its_traffic_at_once(catalog):
    who = customer(catalog)

    catalog.admin("POST", "/admin/providers/p-one/disable", json={"reason": "maintenance"})

    assert "acme/plain-1" not in [m["id"] for m in models(catalog)["data"]]
    assert_error(post_chat(catalog, who.key, chat_body(model="acme/plain-1")), 404,
                 "model_not_found")
    slugs = [p["slug"] for p in catalog.http.get("/v1/providers").json()["data"]]
    assert "p-one" not in slugs and "p-two" in slugs
    catalog.admin("POST", "/admin/providers/p-one/enable")
    assert post_chat(catalog, who.key, chat_body(model="acme/plain-1")).status_code == 200


def test_a_shipped_default_provider_comes_alive_with_its_credential(served):
    before = served.admin("GET", "/admin/providers/groq").json()
    assert before["configured"] is False and before["enabled"] is False
    assert before["base_url"].startswith("https://")

    after = served.admin("POST", "/admin/providers/groq/credentials",
                         json={"credential": "gsk-test-credential-4321"})

    assert after.status_code == 200, after.text
    assert after.json()["configured"] is True and after.json()["enabled"] is True
    assert after.json()["credential_last4"] == "4321"
    listed = {m["id"] for m in models(served)["data"]}
    assert listed and all(ID.match(i) for i in listed)  # groq's seeded models are served


def test_unsafe_base_urls_are_refused_with_no_event(served):
    for url in ("http://127.0.0.1", "https://169.254.169.254", "https://[::1]",
                "https://2130706433", "https://10.1.2.3", "file://localhost/x"):
        refused = served.admin("POST", "/admin/providers",
                               json={"slug": "unsafe", "base_url": url})
        assert_error(refused, 400, "invalid_base_url")
        patched = served.admin("PATCH", "/admin/providers/openai", json={"base_url": url})
        assert patched.status_code in (400, 404)
    assert served.admin("GET", "/admin/providers/unsafe").status_code == 404


def test_an_admin_priced_model_without_metadata_is_served_but_not_listed(served, fake_openai):
    served.register_provider("bare", fake_openai.base_url)
    priced = served.admin("PUT", "/admin/models/acme/bare-1/prices",
                          json={"provider": "bare", "prices": {"input": "1", "output": "1"}})
    assert priced.status_code == 200
    who = customer(served)

    assert post_chat(served, who.key, chat_body(model="acme/bare-1")).status_code == 200
    assert "acme/bare-1" not in [m["id"] for m in models(served)["data"]]  # 5.4
    described = served.admin("PUT", "/admin/models/acme/bare-1/prices", json={
        "provider": "bare", "prices": {"input": "1", "output": "1"}, "context_length": 8192})
    assert described.status_code == 200
    assert "acme/bare-1" in [m["id"] for m in models(served)["data"]]


def test_sort_by_popularity_orders_by_requests_over_seven_days(catalog):
    who = customer(catalog)
    for model, n in (("acme/plain-1", 3), ("acme/dear-1", 1)):
        for _ in range(n):
            assert post_chat(catalog, who.key, chat_body(model=model)).status_code == 200
    catalog.gateway.projector.run_until_idle()

    ordered = [m["id"] for m in models(catalog, sort="popularity")["data"]]

    assert ordered == ["acme/plain-1", "acme/dear-1", "acme/tools-1"]
