"""Account traffic-split routes (2.12) and the general and code routers (2.10, 2.11) over
HTTP, with fake upstreams counting what they receive."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from fakes.openai_upstream import Behaviour, FakeOpenAI

from e2e.support import Customer, assert_error, chat_body, customer, post_chat


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with FakeOpenAI(name="fast") as fast, FakeOpenAI(name="slow") as slow:
        slow.default = Behaviour(delay_before_headers=0.15)
        yield fast, slow


def busy_customer(served) -> Customer:
    """An enterprise account an admin allowed 2,000 requests a minute (1.10)."""
    account_id = served.open_account(plan="enterprise", credit_micros=5_000_000)
    served.admin("PUT", f"/admin/accounts/{account_id}/rate-limits",
                 json={"rate_limits": {"requests_per_minute": 2000, "burst": 500},
                       "reason": "a test sending many requests at once"})
    issued = served.issue_key(account_id)
    return Customer(account_id, issued["id"], issued["key"], issued["prefix"],
                    issued["last4"])


def chat(served, key: str, model: str, **body):
    return post_chat(served, key, chat_body(model=model, **body))


def test_a_route_splits_by_weight_sticks_per_user_and_refuses_bad_weights(served, fake_openai):
    served.register_provider("up", fake_openai.base_url)
    for model in ("acme/left-1", "acme/right-1"):
        served.set_price(model, "up")
    who = busy_customer(served)
    auth = {"Authorization": f"Bearer {who.key}"}
    route = {"targets": [{"model": "acme/left-1", "weight": 70},
                         {"model": "acme/right-1", "weight": 30}]}

    assert served.http.put("/v1/routes/split", json=route, headers=auth).status_code == 200
    bad = {"targets": [{"model": "acme/left-1", "weight": 60},
                       {"model": "acme/right-1", "weight": 30}]}
    assert_error(served.http.put("/v1/routes/other", json=bad, headers=auth), 400,
                 "invalid_request")
    listed = served.http.get("/v1/routes", headers=auth).json()["data"]
    assert [r["name"] for r in listed] == ["split"]  # the refused one left nothing

    targets = Counter()
    for _ in range(300):
        reply = chat(served, who.key, "route:split")
        assert reply.status_code == 200
        assert reply.json()["model"] == reply.headers["x-gatewayz-route-target"]
        targets[reply.headers["x-gatewayz-route-target"]] += 1
    assert 0.60 <= targets["acme/left-1"] / 300 <= 0.80  # 70% within sampling noise
    sticky = {chat(served, who.key, "route:split", user="user-42").headers[
        "x-gatewayz-route-target"] for _ in range(10)}
    assert len(sticky) == 1


def test_a_route_with_a_target_the_key_may_not_use_is_refused_before_any_hold(
        served, fake_openai):
    served.register_provider("up", fake_openai.base_url)
    for model in ("acme/left-1", "other/right-1"):
        served.set_price(model, "up")
    owner = customer(served)
    route = {"targets": [{"model": "acme/left-1", "weight": 50},
                         {"model": "other/right-1", "weight": 50}]}
    served.http.put("/v1/routes/mixed", json=route,
                    headers={"Authorization": f"Bearer {owner.key}"})
    limited = served.issue_key(owner.account_id, allowed_models=["acme/*"])["key"]

    refused = chat(served, limited, "route:mixed")

    assert_error(refused, 403, "model_not_allowed")
    assert fake_openai.chat_requests() == []


def scored(served, fast: FakeOpenAI, slow: FakeOpenAI) -> None:
    """Four scored models; b-fast answers quickest (measured by pinned warm-up calls)."""
    served.register_provider("fastp", fast.base_url)
    served.register_provider("slowp", slow.base_url)
    rows = {"acme/a-best": ("slowp", "10", 90, 60), "acme/b-fast": ("fastp", "2", 70, 50),
            "acme/c-cheap": ("slowp", "0.5", 65, 75), "acme/d-weak": ("fastp", "0.1", 40, 30)}
    for model, (slug, price, general, code) in rows.items():
        served.set_price(model, slug, input_price=price, output_price=price)
        served.admin("PUT", f"/admin/models/{model}/scores",
                     json={"scores": {"general": general, "code": code}})


def test_the_general_router_picks_by_mode_and_says_so(served, upstreams):
    fast, slow = upstreams
    scored(served, fast, slow)
    who = customer(served)
    for model in ("acme/a-best", "acme/b-fast", "acme/c-cheap", "acme/d-weak"):
        assert chat(served, who.key, model).status_code == 200  # latency samples
    assert served.gateway.routing.health.wait_idle()

    picks = {}
    for mode in ("quality", "cost", "latency", "balanced"):
        reply = chat(served, who.key, f"router:general:{mode}")
        assert reply.headers["x-gatewayz-router"] == f"router:general:{mode}"
        picks[mode] = reply.json()["model"]
        assert chat(served, who.key, f"router:general:{mode}").json()["model"] == picks[mode]

    assert picks == {"quality": "acme/a-best", "cost": "acme/c-cheap",
                     "latency": "acme/b-fast", "balanced": "acme/b-fast"}
    assert chat(served, who.key, "router:general").headers["x-gatewayz-router"] == \
        "router:general:balanced"
    refused = chat(served, who.key, "router:general:fastest")
    error = assert_error(refused, 400, "invalid_model")
    assert "balanced" in error["message"]


def test_raising_a_code_score_changes_the_code_router_s_quality_pick(served, upstreams):
    fast, slow = upstreams
    scored(served, fast, slow)
    who = customer(served)

    before = chat(served, who.key, "router:code:quality").json()["model"]
    served.admin("PUT", "/admin/models/acme/d-weak/scores",
                 json={"scores": {"general": 40, "code": 99}})
    after = chat(served, who.key, "router:code:quality").json()["model"]

    assert (before, after) == ("acme/c-cheap", "acme/d-weak")
    simple = chat(served, who.key, "router:code:auto")
    assert simple.status_code == 200 and simple.headers["x-gatewayz-router"] == \
        "router:code:auto"
