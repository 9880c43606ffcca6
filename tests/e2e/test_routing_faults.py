"""Routing under faults, over HTTP with several programmable fake upstreams on loopback
(spec 2.3, 2.6, 2.8, 2.9, 3.3): failover, breakers that starve a failing upstream, pins that
never fail over, cheapest and fastest choice, and the client's fallback list."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes.openai_upstream import Behaviour, FakeOpenAI

from e2e.support import assert_error, chat_body, customer, post_chat, request_record

MODEL = "acme/route-1"


@pytest.fixture
def upstreams() -> Iterator[dict[str, FakeOpenAI]]:
    with FakeOpenAI(name="alpha") as alpha, FakeOpenAI(name="beta") as beta:
        yield {"alpha": alpha, "beta": beta}


def serve_model(served, upstreams, prices: dict[str, tuple[str, str]],
                model: str = MODEL) -> None:
    for slug, (inp, out) in prices.items():
        if served.gateway.catalog_view.provider(slug) is None:
            served.register_provider(slug, upstreams[slug].base_url)
        served.set_price(model, slug, input_price=inp, output_price=out)


def send(served, key: str, n: int = 1, **body) -> list:
    return [post_chat(served, key, chat_body(model=body.pop("model", MODEL), **body))
            for _ in range(n)]


def settle_health(served) -> None:
    assert served.gateway.routing.health.wait_idle()


def test_a_failing_provider_is_failed_over_then_starved_by_its_breaker(served, upstreams):
    serve_model(served, upstreams, {"alpha": ("0.5", "1"), "beta": ("1", "2")})
    who = customer(served)
    upstreams["alpha"].default = Behaviour(status=503)

    first = send(served, who.key, 5)
    assert all(r.status_code == 200 for r in first)
    assert [r.headers["x-gatewayz-provider"] for r in first] == ["beta"] * 5
    assert [r.headers["x-gatewayz-attempts"] for r in first] == ["2"] * 5
    settle_health(served)
    assert len(upstreams["alpha"].chat_requests()) == 5  # the 5th failure opens it (3.3)

    later = send(served, who.key, 10)

    assert all(r.status_code == 200 for r in later)
    assert len(upstreams["alpha"].chat_requests()) == 5  # no traffic while open
    assert [r.headers["x-gatewayz-attempts"] for r in later] == ["1"] * 10
    breakers = served.admin("GET", "/admin/circuit-breakers").json()["data"]
    assert {b["key"]: b["state"] for b in breakers}["p:alpha"] == "open"

    upstreams["alpha"].default = Behaviour()
    reset = served.admin("POST", "/admin/circuit-breakers/alpha/reset")
    assert reset.status_code == 200 and "p:alpha" in reset.json()["reset"]
    assert send(served, who.key)[0].headers["x-gatewayz-provider"] == "alpha"
    events = [e for e in served.admin("GET", "/audit/events", params={
        "context": "catalog", "limit": 1000}).json()["data"]
        if e["type"] == "Health.CircuitStateChanged"]
    assert [(e["data"]["to_state"], e["data"]["actor"].startswith("staff:"))
            for e in events if e["data"]["model"] is None] == [("open", False),
                                                               ("closed", True)]


def test_the_cheapest_healthy_provider_serves_by_default(served, upstreams):
    serve_model(served, upstreams, {"alpha": ("0.5", "1"), "beta": ("0.4", "1")})
    who = customer(served)

    replies = send(served, who.key, 3)

    assert [r.headers["x-gatewayz-provider"] for r in replies] == ["beta"] * 3
    assert upstreams["alpha"].chat_requests() == []


def test_lowest_latency_prefers_the_faster_provider_once_measured(served, upstreams):
    serve_model(served, upstreams, {"alpha": ("1", "1"), "beta": ("1", "1")})
    who = customer(served)
    upstreams["alpha"].default = Behaviour(delay_before_headers=0.25)
    for slug in ("alpha", "beta"):  # pins give each a latency sample
        assert all(r.status_code == 200 for r in send(served, who.key, 2,
                                                       model=f"{MODEL}@{slug}"))
    settle_health(served)

    chosen = send(served, who.key, 3, provider={"strategy": "lowest-latency"})
    by_default = send(served, who.key, 1)  # equal prices: the lower latency EWMA (2.6)

    assert [r.headers["x-gatewayz-provider"] for r in chosen + by_default] == ["beta"] * 4


def test_a_pinned_request_never_fails_over(served, upstreams):
    serve_model(served, upstreams, {"alpha": ("1", "1"), "beta": ("1", "1")})
    who = customer(served)
    upstreams["alpha"].default = Behaviour(status=400)

    refused = send(served, who.key, model=f"{MODEL}@alpha")[0]

    assert refused.status_code == 400
    assert upstreams["beta"].chat_requests() == []
    upstreams["alpha"].default = Behaviour(status=503)
    failed = send(served, who.key, model=f"alpha/{MODEL}")[0]
    assert_error(failed, 502, "provider_error")
    assert upstreams["beta"].chat_requests() == []


def test_ignored_providers_get_nothing(served, upstreams):
    serve_model(served, upstreams, {"alpha": ("0.1", "0.1"), "beta": ("1", "1")})
    who = customer(served)

    replies = send(served, who.key, 30, provider={"ignore": ["alpha"]})

    assert all(r.headers["x-gatewayz-provider"] == "beta" for r in replies)
    assert upstreams["alpha"].chat_requests() == []


def test_a_client_error_is_not_failed_over(served, upstreams):
    serve_model(served, upstreams, {"alpha": ("0.5", "1"), "beta": ("1", "1")})
    who = customer(served)
    upstreams["alpha"].default = Behaviour(status=422)

    # The provider's own refusal reaches the client (9.8); nobody else is asked (2.8).
    assert send(served, who.key)[0].status_code == 422
    assert upstreams["beta"].chat_requests() == []


def test_the_fallback_list_answers_with_the_model_that_served_at_its_price(served, upstreams):
    serve_model(served, upstreams, {"alpha": ("1", "2")})
    serve_model(served, upstreams, {"beta": ("5", "10")}, model="other/model-2")
    who = customer(served)
    upstreams["alpha"].default = Behaviour(status=503)

    reply = send(served, who.key, models=["other/model-2"])[0]

    assert reply.status_code == 200, reply.text
    assert reply.json()["model"] == "other/model-2"
    assert reply.headers["x-gatewayz-model"] == "other/model-2"
    # The sole candidate of the first model is tried 3 times (2.8), then the next model.
    assert len(upstreams["alpha"].chat_requests()) == 3
    assert reply.headers["x-gatewayz-attempts"] == "4"
    record = request_record(served, reply.headers["x-request-id"])
    assert record["served_model"] == "other/model-2"
    usage = reply.json()["usage"]
    assert record["charged_micros"] == usage["prompt_tokens"] * 5 + \
        usage["completion_tokens"] * 10


def test_aliases_are_data_an_admin_sets(served, upstreams):
    serve_model(served, upstreams, {"alpha": ("1", "1")})
    who = customer(served)

    assert served.admin("PUT", "/admin/aliases/route-one",
                        json={"target": MODEL}).status_code == 200
    reply = send(served, who.key, model="Route-One")[0]
    assert reply.status_code == 200 and reply.json()["model"] == MODEL
    assert_error(served.admin("PUT", "/admin/aliases/route-two",
                              json={"target": "route-one"}), 400, "invalid_request")
    # An alias has no "/", so it can never shadow a canonical org/model id (2.2).
    assert_error(served.admin("PUT", "/admin/aliases/no-target",
                              json={"target": "acme/unknown-9"}), 400, "invalid_request")
    assert served.admin("DELETE", "/admin/aliases/route-one").status_code == 200
    assert_error(send(served, who.key, model="route-one")[0], 404, "model_not_found")


def test_a_model_in_maintenance_gets_no_traffic_until_it_ends(served, upstreams):
    serve_model(served, upstreams, {"alpha": ("1", "1")})
    who = customer(served)

    started = served.admin("POST", f"/admin/models/{MODEL}/maintenance",
                           json={"reason": "provider migration"})
    refused = send(served, who.key)[0]
    ended = served.admin("DELETE", f"/admin/models/{MODEL}/maintenance")
    served_again = send(served, who.key)[0]

    assert started.json()["maintenance"] is True and ended.json()["maintenance"] is False
    error = assert_error(refused, 503, "no_provider_available")
    assert "maintenance" in error["message"]
    assert upstreams["alpha"].chat_requests()[-1:] and served_again.status_code == 200
    assert len(upstreams["alpha"].chat_requests()) == 1  # nothing reached it meanwhile


def test_with_every_circuit_open_the_answer_is_503_with_the_half_open_time(served, upstreams):
    serve_model(served, upstreams, {"alpha": ("1", "1")})
    who = customer(served)
    upstreams["alpha"].default = Behaviour(status=500)

    # A sole candidate gets 3 attempts per request; the 5th failure opens its breaker,
    # which may already refuse the 6th attempt (the recorder runs beside the request).
    failed = send(served, who.key, 2)
    settle_health(served)
    tried = len(upstreams["alpha"].chat_requests())
    refused = send(served, who.key)[0]

    assert [r.status_code for r in failed] == [502, 502] and tried in (5, 6)
    assert_error(refused, 503, "no_provider_available")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert len(upstreams["alpha"].chat_requests()) == tried  # the open breaker sent nothing
