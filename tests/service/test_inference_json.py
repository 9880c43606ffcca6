"""The inference use case against a fake provider port (6.4, 6.5, 9.7): no HTTP, no sockets.
JSON answers, failover, provider errors and an insufficient balance.

A real Gateway over the memory backend (events in memory, read models in SQLite, the
in-process hold store, the group-commit writer), its projector run only when a test asks,
and ``gw.inference.clients["http"]`` replaced by a FakeProviderPort (the fixtures are in
tests/service/conftest.py). Assertions read the requests event store (the InferenceRequest
stream), the read model and the hold store. Streams: test_inference_streams.py; clients that
leave: test_inference_cancellation.py.
"""

from __future__ import annotations

import json

import pytest
from fakes.provider_port import (
    connection_error,
    json_answer,
    status_answer,
    stream_answer,
    timeout_answer,
)

from domain.errors import DomainError
from service.support import (
    CREDIT,
    DUO,
    SOLO,
    aggregate,
    assert_voided_free,
    available,
    balance,
    chat,
    consume,
    cost,
    customer,
    estimated_tokens,
    events_of,
    new_request_id,
    readme_hold,
    settle_all,
    terminal,
)


# -- JSON ---------------------------------------------------------------------------------------
def test_a_json_answer_settles_its_cost_and_forwards_the_body_with_only_model_rewritten(
        gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(json_answer("Hi!", prompt_tokens=12, completion_tokens=7))
    request = chat(SOLO, max_tokens=50, temperature=0.5, user="u-1")
    request_id = new_request_id()

    response = loop.run_until_complete(gw.inference.chat(request_id, request, principal))

    assert response.status == 200
    payload = json.loads(response.body)
    assert payload["model"] == SOLO
    assert payload["choices"][0]["message"]["content"] == "Hi!"
    [sent] = port.received
    assert (sent.provider, sent.path, sent.credential) == \
        ("alpha", "/chat/completions", "sk-alpha-credential")
    assert sent.body == {**request.body, "model": "solo-1"}
    settle_all(gw)
    placed, end = terminal(gw, request_id)
    assert placed["hold_micros"] == readme_hold(("alpha",), request, 50)
    assert placed["reserved_by_pool"] == {"trial": 0, "allowance": 0,
                                          "purchased": placed["hold_micros"]}
    expected = cost("alpha", 12, 7)
    assert end.type == "InferenceRequest.HoldSettled"
    assert (end.data["cost_micros"], end.data["charged_micros"],
            end.data["uncollected_micros"]) == (expected, expected, 0)
    assert end.data["charged_by_pool"] == {"trial": 0, "allowance": 0, "purchased": expected}
    assert end.data["token_source"] == "provider"
    assert aggregate(gw, request_id).outcome == "settled"
    view = balance(gw, account_id)
    assert (view["balance_micros"], view["open_holds"]) == (CREDIT - expected, 0)
    assert available(gw, account_id) == CREDIT - expected
    assert port.closed == len(port.upstreams) == 1


def test_usage_above_the_hold_charges_the_hold_and_records_the_rest_as_uncollected(
        gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    request = chat(SOLO, max_tokens=10)
    hold = readme_hold(("alpha",), request, 10)
    port.will(json_answer("long", prompt_tokens=16, completion_tokens=500))
    request_id = new_request_id()

    loop.run_until_complete(gw.inference.chat(request_id, request, principal))

    settle_all(gw)
    _, end = terminal(gw, request_id)
    assert end.data["cost_micros"] == cost("alpha", 16, 500) > hold
    assert end.data["charged_micros"] == hold
    assert end.data["uncollected_micros"] == cost("alpha", 16, 500) - hold
    assert balance(gw, account_id)["balance_micros"] == CREDIT - hold
    assert available(gw, account_id) == CREDIT - hold


def test_a_charge_spanning_pools_is_taken_in_spend_order_trial_allowance_purchased(
        gw, port, loop):
    account_id, principal = customer(gw, plan="trial", credit=CREDIT)  # trial pool: 5,000,000
    gw.accounts.reset_allowance(account_id, "team", "in_1", 1_000_000, 0)
    request = chat(SOLO, max_tokens=1_000_000, n=4)
    hold = readme_hold(("alpha",), request, 1_000_000, n=4)  # 8,000,016
    port.will(json_answer("ok", prompt_tokens=16, completion_tokens=3_500_000))
    request_id = new_request_id()

    loop.run_until_complete(gw.inference.chat(request_id, request, principal))

    settle_all(gw)
    placed, end = terminal(gw, request_id)
    assert placed["reserved_by_pool"] == {"trial": 5_000_000, "allowance": 1_000_000,
                                          "purchased": hold - 6_000_000}
    charged = cost("alpha", 16, 3_500_000)
    assert end.data["charged_by_pool"] == {"trial": 5_000_000, "allowance": 1_000_000,
                                           "purchased": charged - 6_000_000}
    pools = {p: v["balance_micros"] for p, v in balance(gw, account_id)["pools"].items()}
    assert pools == {"trial": 0, "allowance": 0, "purchased": CREDIT - (charged - 6_000_000)}
    assert available(gw, account_id) == CREDIT - (charged - 6_000_000)


def test_an_answer_without_usage_is_charged_on_the_estimate(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    request = chat(SOLO, content="twelve chars", max_tokens=100)
    port.will(json_answer("seventeen chars!!", prompt_tokens=None))
    request_id = new_request_id()

    loop.run_until_complete(gw.inference.chat(request_id, request, principal))

    settle_all(gw)
    _, end = terminal(gw, request_id)
    expected = cost("alpha", estimated_tokens("twelve chars"),
                    estimated_tokens("seventeen chars!!"))
    assert (end.data["token_source"], end.data["charged_micros"]) == ("estimated", expected)
    assert available(gw, account_id) == CREDIT - expected


# -- failover -----------------------------------------------------------------------------------
def test_a_500_then_a_success_on_the_second_provider_charges_once_at_its_price(
        gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(status_answer(500), provider="alpha")
    port.will(json_answer("from beta", prompt_tokens=20, completion_tokens=10), provider="beta")
    request = chat(DUO, max_tokens=100)
    request_id = new_request_id()

    response = loop.run_until_complete(gw.inference.chat(request_id, request, principal))

    assert response.status == 200
    assert [(r.provider, r.body["model"]) for r in port.received] == \
        [("alpha", "duo-1"), ("beta", "duo-1")]
    assert port.received[0].body == port.received[1].body
    settle_all(gw)
    placed, end = terminal(gw, request_id)
    assert placed["hold_micros"] == readme_hold(("alpha", "beta"), request, 100)
    assert end.type == "InferenceRequest.HoldSettled"
    assert end.data["provider"] == "beta"
    assert end.data["charged_micros"] == cost("beta", 20, 10)
    assert [(a["provider"], a["outcome"], a["status"]) for a in end.data["attempts"]] == \
        [("alpha", "http_error", 500), ("beta", "ok", 200)]
    assert available(gw, account_id) == CREDIT - cost("beta", 20, 10)
    assert port.closed == len(port.upstreams) == 2


@pytest.mark.parametrize("first", [connection_error(), timeout_answer(), status_answer(429),
                                   status_answer(401)], ids=["connect", "timeout", "429", "401"])
def test_connection_errors_timeouts_429_and_401_fail_over(gw, port, loop, first):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(first, provider="alpha")
    port.will(json_answer("ok", prompt_tokens=5, completion_tokens=5), provider="beta")
    request_id = new_request_id()

    loop.run_until_complete(gw.inference.chat(request_id, chat(DUO), principal))

    settle_all(gw)
    _, end = terminal(gw, request_id)
    assert (end.type, end.data["provider"]) == ("InferenceRequest.HoldSettled", "beta")
    assert available(gw, account_id) == CREDIT - cost("beta", 5, 5)


def test_when_every_provider_fails_the_hold_is_voided_and_nothing_is_charged(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(status_answer(503), provider="alpha")
    port.will(connection_error(), provider="beta")
    request_id = new_request_id()

    with pytest.raises(DomainError) as failed:
        loop.run_until_complete(gw.inference.chat(request_id, chat(DUO), principal))

    assert failed.value.code == "provider_error"
    assert [r.provider for r in port.received] == ["alpha", "beta"]
    assert_voided_free(gw, account_id, request_id, "provider_error")
    assert port.closed == len(port.upstreams)


def test_when_every_provider_times_out_the_void_says_timeout(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(timeout_answer(), timeout_answer())
    request_id = new_request_id()

    with pytest.raises(DomainError) as failed:
        loop.run_until_complete(gw.inference.chat(request_id, chat(DUO), principal))

    assert failed.value.code == "provider_timeout"
    assert_voided_free(gw, account_id, request_id, "timeout")


def test_a_400_goes_back_to_the_client_without_failover_and_voids_the_hold(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(status_answer(400, "messages[0] is not acceptable"), provider="alpha")
    request_id = new_request_id()

    with pytest.raises(DomainError) as rejected:
        loop.run_until_complete(gw.inference.chat(request_id, chat(DUO), principal))

    assert rejected.value.code == "invalid_request"
    assert "messages[0] is not acceptable" in rejected.value.message
    assert [r.provider for r in port.received] == ["alpha"]  # beta never called
    assert_voided_free(gw, account_id, request_id, "rejected")
    assert port.closed == len(port.upstreams) == 1


# -- balance ------------------------------------------------------------------------------------
def test_insufficient_balance_is_refused_before_any_event_or_provider_call(gw, port, loop):
    account_id, principal = customer(gw, credit=1_000)
    request = chat(SOLO, max_tokens=1_000)  # a hold of over 2,000 micros
    before = gw.stores.max_positions()["requests"]
    request_id = new_request_id()

    with pytest.raises(DomainError) as refused:
        loop.run_until_complete(gw.inference.chat(request_id, request, principal))

    assert refused.value.code == "insufficient_credits"
    assert refused.value.details["available_micros"] == 1_000
    assert refused.value.details["required_micros"] == readme_hold(("alpha",), request, 1_000)
    assert port.received == []
    assert gw.writer.wait_idle(10)
    assert gw.stores.max_positions()["requests"] == before
    assert events_of(gw, request_id) == []
    assert available(gw, account_id) == 1_000


def test_an_open_hold_counts_against_the_next_request(gw, port, loop):
    """Two requests whose holds fit the balance one at a time but not together."""
    account_id, principal = customer(gw, credit=300)
    request = chat(SOLO, content="hi", max_tokens=100, stream=True)  # hold: (1 + 8) + 200
    port.will(stream_answer(["a"] * 3, chunk_delay=0.01))
    first = loop.run_until_complete(gw.inference.chat(new_request_id(), request, principal))
    assert available(gw, account_id) == 300 - 209

    with pytest.raises(DomainError) as refused:
        loop.run_until_complete(gw.inference.chat(new_request_id(), request, principal))

    assert refused.value.code == "insufficient_credits"
    assert len(port.received) == 1
    loop.run_until_complete(consume(first.stream))
    settle_all(gw)
    assert available(gw, account_id) == 300 - cost("alpha", 10, 3)
