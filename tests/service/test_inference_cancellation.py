"""The inference use case when the client leaves (6.4, 6.5, 9.7), against the fake provider
port: mid-stream, before any output, during the hold commit, or by dropping a stream response
unread. Each hold must end promptly with the right charge, never wait for the TTL sweep."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from fakes.provider_port import json_answer, stream_answer

from service.support import (
    CREDIT,
    SOLO,
    assert_voided_free,
    available,
    balance,
    chat,
    content_of,
    cost,
    customer,
    estimated_tokens,
    events_of,
    new_request_id,
    settle_all,
    sse_events,
    terminal,
    types_of,
)


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
