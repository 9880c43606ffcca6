"""GET /v1/models and GET /v1/models/{model_id} through the served app (9.5, 5.3, 5.5): both
official SDKs, echo only for test keys, `allowed` per key, and a real `created`."""

from __future__ import annotations

import io
from datetime import datetime

import anthropic
import openai
import pytest

from domain.api_key import ApiKey
from domain.ids import new_id
from domain.key_format import display_prefix, generate_api_key, last4, secret_hash
from e2e.support import MODEL, assert_error, customer, price_model, sdk
from projections.catalog import CatalogQueries
from projections.rebuild import rebuild

MORE = ("acme/chat-2", "zeta/mini", "beta/large")
ALL = sorted((MODEL, *MORE))


@pytest.fixture
def catalog(served, fake_openai):
    """acme/chat-1 on two providers (the cheaper one second by priority), three more models."""
    price_model(served, fake_openai, max_output_tokens=4096)
    served.register_provider("other", fake_openai.base_url, priority=200)
    served.set_price(MODEL, "other", input_price="0.5", output_price="1.25",
                     max_output_tokens=8192)
    for model_id in MORE:
        served.set_price(model_id, "fakeup")
    return served


def get(served, path: str, key: str | None = None, **headers: str):
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return served.http.get(path, headers=headers)


def anthropic_client(served, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served.url, api_key=key, max_retries=0)


def restricted_key(served, account_id: str, allowed: list[str]) -> str:
    """A live key limited to ``allowed`` (no admin route sets allowed_models yet)."""
    gw, secret = served.gateway, generate_api_key("live")
    key = ApiKey(key_id=new_id("key"), account_id=account_id, name="restricted",
                 environment="live", prefix=display_prefix(secret), last4=last4(secret),
                 secret_hash=secret_hash(gw.access.pepper, secret), scopes=["*"],
                 expires_at=None, max_requests=None, allowed_models=allowed, created_by="test")
    assert gw.projector.wait_for("access", gw.stores.access.save(key)[-1].notification.id)
    return secret


def test_the_openai_sdk_lists_and_retrieves_models_with_the_extended_fields(catalog):
    client = sdk(catalog, customer(catalog).key)

    models = client.models.list()

    assert [m.id for m in models] == ALL  # one entry per id, no echo for a live key
    chat = next(m for m in models.data if m.id == MODEL)
    assert chat.object == "model" and chat.owned_by == "acme"
    extra = chat.model_extra
    assert extra["pricing"] == {"input": "0.5", "output": "1.25",  # the cheapest provider
                                "source": "explicit"}
    assert sorted(p["slug"] for p in extra["providers"]) == ["fakeup", "other"]
    assert extra["max_output_tokens"] == 8192 and extra["context_length"] == 128_000
    assert extra["modalities"] == {"input": ["text"], "output": ["text"]}
    assert extra["health_status"] == "healthy" and extra["name"] == MODEL
    assert extra["allowed"] is True
    one = client.models.retrieve(MODEL)
    assert one.id == MODEL and one.created == chat.created
    assert one.model_extra["pricing"] == extra["pricing"]
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("acme/nope")
    assert raised.value.body["code"] == "model_not_found"


def test_created_is_the_listing_time_and_survives_a_rebuild(catalog):
    gw = catalog.gateway
    listed_at = CatalogQueries(gw.db).listed()[MODEL]
    expected = int(datetime.fromisoformat(listed_at).timestamp())
    before = get(catalog, "/v1/models").json()["data"]

    created = {m["id"]: m["created"] for m in before}
    assert created[MODEL] == expected and expected > 1_700_000_000
    catalog.set_price(MODEL, "fakeup", input_price="3")  # a later price leaves it unchanged
    assert get(catalog, f"/v1/models/{MODEL}").json()["created"] == expected
    rebuild(gw.config, gw.stores, gw.db, "catalog", io.StringIO())
    gw.catalog_view.refresh()
    assert {m["id"]: m["created"] for m in get(catalog, "/v1/models").json()["data"]} == created


def test_echo_is_listed_to_test_keys_only(catalog):
    account = catalog.open_account()
    test_key = catalog.issue_key(account, environment="test")["key"]
    live_key = catalog.issue_key(account, environment="live")["key"]

    anonymous = get(catalog, "/v1/models").json()["data"]
    live = get(catalog, "/v1/models", live_key).json()["data"]
    test = get(catalog, "/v1/models", test_key).json()["data"]

    assert [m["id"] for m in anonymous] == [m["id"] for m in live] == ALL
    assert [m["id"] for m in test] == sorted([*ALL, "gatewayz/echo"])
    echo = next(m for m in test if m["id"] == "gatewayz/echo")
    assert echo["allowed"] is True and [p["slug"] for p in echo["providers"]] == ["gatewayz"]
    assert echo["pricing"] == {"input": "0", "output": "0", "source": "free"}
    assert echo["created"] > 0
    assert all("allowed" not in m for m in anonymous)
    assert_error(get(catalog, "/v1/models/gatewayz/echo"), 404, "model_not_found", "model")
    assert_error(get(catalog, "/v1/models/gatewayz/echo", live_key), 404, "model_not_found")
    assert get(catalog, "/v1/models/gatewayz/echo", test_key).json()["id"] == "gatewayz/echo"


def test_a_key_restricted_to_other_models_sees_them_marked_not_allowed(catalog):
    key = restricted_key(catalog, catalog.open_account(), ["acme/*"])

    data = get(catalog, "/v1/models", key).json()["data"]

    assert {m["id"]: m["allowed"] for m in data} == {
        m: m.startswith("acme/") for m in ALL}
    assert get(catalog, "/v1/models/zeta/mini", key).json()["allowed"] is False


def test_a_bad_key_is_refused_and_recorded_while_no_key_is_public(catalog):
    unknown = generate_api_key("live")  # well formed, never issued
    assert get(catalog, "/v1/models").status_code == 200
    for path, key in (("/v1/models", unknown), ("/v1/models/acme/chat-1", "not-a-key")):
        refused = get(catalog, path, key)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert_error(get(catalog, "/v1/models", catalog.owner_token), 403,
                 "wrong_credential_type")
    shaped = get(catalog, "/v1/models", unknown, **{"anthropic-version": "2023-06-01"})
    assert shaped.status_code == 401 and shaped.json()["type"] == "error"
    assert shaped.json()["error"]["type"] == "authentication_error"
    gw = catalog.gateway
    assert gw.security.wait_idle()
    events = [gw.stores.access.mapper.to_domain_event(n)
              for n in gw.stores.access.recorder.select_notifications(start=1, limit=100_000)
              if n.topic.startswith("domain.security:")]
    failed = [e for e in events if type(e).__name__ == "AuthenticationFailed"]
    assert ("unknown", unknown[:12], "GET /v1/models") in {
        (e.reason, e.key_prefix, e.route) for e in failed}
    assert any(type(e).__name__ == "AccessDenied" for e in events)


def test_the_anthropic_sdk_lists_pages_and_retrieves(catalog):
    client = anthropic_client(catalog, customer(catalog).key)

    first = client.models.list()
    paged = client.models.list(limit=1)

    assert [m.id for m in first.data] == ALL and first.has_more is False
    assert first.first_id == ALL[0] and first.last_id == ALL[-1]
    assert paged.data[0].id == ALL[0] and paged.has_more is True
    assert [m.id for m in paged] == ALL  # the SDK follows after_id to the end
    after = client.models.list(limit=2, after_id=ALL[0])
    assert [m.id for m in after.data] == ALL[1:3] and after.has_more is True
    before = client.models.list(limit=2, before_id=ALL[-1])
    assert [m.id for m in before.data] == ALL[-3:-1] and before.has_more is True
    one = client.models.retrieve(MODEL)
    assert one.type == "model" and one.id == MODEL and one.display_name == MODEL
    listed_at = CatalogQueries(catalog.gateway.db).listed()[MODEL]
    assert one.created_at == datetime.fromisoformat(listed_at)
    with pytest.raises(anthropic.NotFoundError) as raised:
        client.models.retrieve("acme/nope")
    assert raised.value.body["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("limit", ["0", "1001", "x"])
def test_an_out_of_range_limit_is_refused_in_the_anthropic_shape(catalog, limit):
    response = catalog.http.get("/v1/models", params={"limit": limit},
                                headers={"anthropic-version": "2023-06-01"})

    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["request_id"] == response.headers["x-request-id"]
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"]


def test_the_anthropic_sdk_sees_a_refused_limit_as_a_bad_request(catalog):
    with pytest.raises(anthropic.BadRequestError) as raised:
        anthropic_client(catalog, customer(catalog).key).models.list(limit=0)
    assert raised.value.body["error"]["type"] == "invalid_request_error"
