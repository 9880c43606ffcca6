"""The inference use case against a fake provider port (6.4, 6.5, 9.7): no HTTP, no sockets.

A real Gateway over the memory backend (events in memory, read models in SQLite, the
in-process hold store, the group-commit writer), its projector run only when a test asks,
and ``gw.inference.clients["http"]`` replaced by a FakeProviderPort. Assertions read the
requests event store (the InferenceRequest stream), the read model and the hold store.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import pytest
from fakes.provider_port import (
    FakeProviderPort,
    connection_error,
    json_answer,
    status_answer,
    stream_answer,
    timeout_answer,
)
from integration.support import TERMINAL_TYPES, quiet_gateway

from domain.errors import DomainError
from domain.inference_request import InferenceRequest
from service.support import (
    DUO,
    SOLO,
    add_providers,
    chat,
    cost,
    customer,
    estimated_tokens,
    events_of,
    install_port,
    new_request_id,
    readme_hold,
    types_of,
)

CREDIT = 10_000_000


@pytest.fixture
def gw(tmp_path) -> Iterator:
    with quiet_gateway("memory", tmp_path / "data") as gateway:
        add_providers(gateway)
        yield gateway


@pytest.fixture
def port(gw) -> FakeProviderPort:
    return install_port(gw)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def settle_all(gw) -> None:
    """Everything handed to the writer committed, then projected (the test's projector)."""
    assert gw.writer.wait_idle(10)
    gw.projector.run_until_idle()


def available(gw, account_id: str) -> int:
    return gw.holds.available(account_id, int(time.time()))


def balance(gw, account_id: str) -> dict:
    return gw.balances.balance(account_id, int(time.time()))


def terminal(gw, request_id: str):
    events = events_of(gw, request_id)
    ends = [e for e in events if e.type in TERMINAL_TYPES]
    assert len(ends) == 1, [e.type for e in events]
    assert events[0].type == "InferenceRequest.HoldPlaced"
    return events[0].data, ends[0]


def aggregate(gw, request_id: str) -> InferenceRequest:
    return gw.stores.requests.repository.get(InferenceRequest.create_id(request_id))


def assert_voided_free(gw, account_id: str, request_id: str, reason: str | None,
                       credit: int = CREDIT) -> None:
    settle_all(gw)
    _, end = terminal(gw, request_id)
    assert end.type == "InferenceRequest.HoldVoided", end
    if reason is not None:
        assert end.data["reason"] == reason, end.data
    assert aggregate(gw, request_id).outcome == "voided"
    view = balance(gw, account_id)
    assert (view["balance_micros"], view["open_holds"]) == (credit, 0)
    assert available(gw, account_id) == credit


async def consume(stream) -> bytes:
    return b"".join([chunk async for chunk in stream])


def sse_events(raw: bytes) -> list:
    out = []
    for event in raw.split(b"\n\n"):
        if event.startswith(b"data: "):
            data = event[6:]
            out.append(data.decode() if data == b"[DONE]" else json.loads(data))
    return out


def content_of(events: list) -> str:
    return "".join(choice.get("delta", {}).get("content") or ""
                   for e in events if isinstance(e, dict) for choice in e.get("choices", []))


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


# -- streams ------------------------------------------------------------------------------------
def test_a_complete_stream_with_usage_is_charged_the_reported_usage(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(stream_answer(["Hel", "lo", " you"], usage=(30, 3)))
    request_id = new_request_id()

    response = loop.run_until_complete(
        gw.inference.chat(request_id, chat(SOLO, stream=True), principal))
    raw = loop.run_until_complete(consume(response.stream))

    events = sse_events(raw)
    assert events[-1] == "[DONE]"
    assert content_of(events) == "Hello you"
    assert {e["model"] for e in events if isinstance(e, dict)} == {SOLO}
    settle_all(gw)
    _, end = terminal(gw, request_id)
    assert end.type == "InferenceRequest.HoldSettled"
    assert (end.data["token_source"], end.data["charged_micros"],
            end.data["client_disconnected"]) == ("provider", cost("alpha", 30, 3), False)
    assert available(gw, account_id) == CREDIT - cost("alpha", 30, 3)
    assert port.closed == 1


def test_a_complete_stream_without_usage_is_charged_on_the_estimate(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    request = chat(SOLO, content="eight ch", stream=True, include_usage=False)
    port.will(stream_answer(["abcde", "fghij"], usage=None))
    request_id = new_request_id()

    response = loop.run_until_complete(gw.inference.chat(request_id, request, principal))
    loop.run_until_complete(consume(response.stream))

    settle_all(gw)
    _, end = terminal(gw, request_id)
    expected = cost("alpha", estimated_tokens("eight ch"), estimated_tokens("abcdefghij"))
    assert (end.data["token_source"], end.data["charged_micros"]) == ("estimated", expected)
    assert available(gw, account_id) == CREDIT - expected


def test_a_stream_always_asks_upstream_for_usage_and_strips_it_when_the_client_did_not(
        gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    request = chat(SOLO, stream=True, include_usage=False)
    port.will(stream_answer(["a", "b"], usage=(7, 2)))
    request_id = new_request_id()

    response = loop.run_until_complete(gw.inference.chat(request_id, request, principal))
    events = sse_events(loop.run_until_complete(consume(response.stream)))

    assert port.received[0].body["stream_options"] == {"include_usage": True}
    assert not any(isinstance(e, dict) and e.get("usage") for e in events)
    assert events[-1] == "[DONE]"
    settle_all(gw)
    _, end = terminal(gw, request_id)
    assert (end.data["token_source"], end.data["charged_micros"]) == \
        ("provider", cost("alpha", 7, 2))
    assert available(gw, account_id) == CREDIT - cost("alpha", 7, 2)


def test_a_stream_broken_midway_ends_with_an_error_event_and_voids_the_hold(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(stream_answer(["one", "two", "three", "four"], break_after=3))
    request_id = new_request_id()

    response = loop.run_until_complete(
        gw.inference.chat(request_id, chat(SOLO, stream=True), principal))
    raw = loop.run_until_complete(consume(response.stream))

    events = sse_events(raw)
    assert "[DONE]" not in events
    assert events[-1]["error"]["code"] == "provider_error"
    assert content_of(events) == "onetwo"
    assert_voided_free(gw, account_id, request_id, "provider_error")
    assert port.closed == 1


def test_an_empty_stream_is_voided_as_empty(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(stream_answer([], usage=None))
    request_id = new_request_id()

    response = loop.run_until_complete(
        gw.inference.chat(request_id, chat(SOLO, stream=True), principal))
    loop.run_until_complete(consume(response.stream))

    assert_voided_free(gw, account_id, request_id, "empty_stream")


def test_a_stream_fails_over_before_its_first_byte(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(status_answer(502), provider="alpha")
    port.will(stream_answer(["x"], usage=(4, 1)), provider="beta")
    request_id = new_request_id()

    response = loop.run_until_complete(
        gw.inference.chat(request_id, chat(DUO, stream=True), principal))
    loop.run_until_complete(consume(response.stream))

    settle_all(gw)
    _, end = terminal(gw, request_id)
    assert (end.data["provider"], end.data["charged_micros"]) == ("beta", cost("beta", 4, 1))
    assert available(gw, account_id) == CREDIT - cost("beta", 4, 1)


def test_a_client_cancelled_mid_stream_pays_for_the_output_it_was_sent(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    request = chat(SOLO, content="count please", stream=True)
    port.will(stream_answer([f"w{i:02d} " for i in range(40)], usage=(9, 40),
                            chunk_delay=0.02))
    request_id = new_request_id()
    response = loop.run_until_complete(gw.inference.chat(request_id, request, principal))
    received: list[bytes] = []

    async def client() -> None:
        async for chunk in response.stream:
            received.append(chunk)

    async def leave_after(events: int) -> None:
        task = asyncio.create_task(client())
        while len(received) < events:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(leave_after(6))  # the role chunk and at least five words

    delivered = content_of(sse_events(b"".join(received)))
    assert delivered.startswith("w00 w01 w02 w03 w04 ")
    settle_all(gw)
    _, end = terminal(gw, request_id)
    expected = cost("alpha", estimated_tokens("count please"), estimated_tokens(delivered))
    assert end.type == "InferenceRequest.HoldSettled"
    assert (end.data["client_disconnected"], end.data["token_source"]) == (True, "estimated")
    assert end.data["charged_micros"] == expected
    assert available(gw, account_id) == CREDIT - expected
    assert port.upstreams[0].closed  # the upstream is released when the client leaves
    assert port.upstreams[0].sent < 40


def test_a_client_cancelled_before_any_output_pays_nothing(gw, port, loop):
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(json_answer("late", delay=5.0))
    request_id = new_request_id()

    async def leave_early() -> None:
        task = asyncio.create_task(gw.inference.chat(request_id, chat(SOLO), principal))
        while not port.received:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(leave_early())

    assert_voided_free(gw, account_id, request_id, "cancelled_before_output")


def test_a_cancellation_during_the_hold_commit_voids_the_hold_promptly(
        gw, port, loop, monkeypatch):
    """The client leaves while HoldPlaced is being committed: the commit cannot be taken
    back, so the hold must end (voided, charge 0) as soon as it lands, not wait 660 s for the
    sweeper, and the reservation must not stay in the hold store."""
    account_id, principal = customer(gw, credit=CREDIT)
    port.default = json_answer("never asked")
    requests_app = gw.stores.requests
    original_save = requests_app.save
    entered, release = threading.Event(), threading.Event()

    def gated_save(*args, **kwargs):
        if not entered.is_set():
            entered.set()
            release.wait(10)
        return original_save(*args, **kwargs)

    monkeypatch.setattr(requests_app, "save", gated_save)
    request_id = new_request_id()

    async def leave_during_commit() -> None:
        task = asyncio.create_task(gw.inference.chat(request_id, chat(SOLO), principal))
        assert await asyncio.to_thread(entered.wait, 10), "the hold commit never started"
        task.cancel()
        await asyncio.sleep(0.01)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run_until_complete(leave_during_commit())
    monkeypatch.undo()
    deadline = time.monotonic() + 3  # "promptly": well inside the sweeper's 660 s
    while time.monotonic() < deadline:
        assert gw.writer.wait_idle(10)
        if len(events_of(gw, request_id)) != 1:
            break
        time.sleep(0.02)

    assert port.received == []
    types = types_of(gw, request_id)
    assert types in ([], ["HoldPlaced", "HoldVoided"]), \
        f"hold left open after the client cancelled during its commit: {types}"
    settle_all(gw)
    view = balance(gw, account_id)
    assert (view["balance_micros"], view["open_holds"]) == (CREDIT, 0)
    assert available(gw, account_id) == CREDIT


def test_a_stream_response_dropped_before_it_was_read_ends_its_hold_promptly(gw, port, loop):
    """chat() returned a 200 stream, but nothing ever iterates it (the client went away before
    the response started, or a wrapper failed): closing the unstarted generator runs none of
    its code. The hold must still end at once (voided, charge 0) and the upstream be closed,
    not wait for the 660 s TTL with the upstream connection left open."""
    account_id, principal = customer(gw, credit=CREDIT)
    port.will(stream_answer(["never", "read"]))
    request_id = new_request_id()
    response = loop.run_until_complete(
        gw.inference.chat(request_id, chat(SOLO, stream=True), principal))

    loop.run_until_complete(response.stream.aclose())

    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(events_of(gw, request_id)) == 1:
        assert gw.writer.wait_idle(10)
        time.sleep(0.02)
    assert types_of(gw, request_id) == ["HoldPlaced", "HoldVoided"], \
        "a stream response closed unread leaves its hold open until the TTL sweep"
    assert port.upstreams[0].closed, "the upstream of an unread stream is never closed"
    assert_voided_free(gw, account_id, request_id, "cancelled_before_output")
