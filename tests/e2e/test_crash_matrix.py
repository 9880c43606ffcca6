"""Crash-point matrix: `gatewayz serve` is killed with -9 at each step of one request
(GATEWAYZ_CRASH_AT, application/crashpoints.py), restarted on the same state, and must
recover: one terminal event per request, a charge only for a committed settlement, no
reservation left in the hold store, read models that replay to the same hashes."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.openai_upstream import Behaviour

from application import crashpoints
from e2e.crash_support import TERMINAL_EVENTS, Deployment, Server, event_name
from e2e.support import MODEL, TERMINAL, balance, customer, ledger, price_model

STEPS = ("before_hold_commit", "after_hold_commit", "mid_stream", "after_answer",
         "after_settle_commit", "after_projection")
NOT_CALLED = ("before_hold_commit", "after_hold_commit")  # the provider never sees it
SETTLED = ("after_settle_commit", "after_projection")  # the settlement is durable
MUST_DROP = ("before_hold_commit", "after_hold_commit", "mid_stream")  # no full answer
BACKENDS = [pytest.param("sqlite", id="sqlite"),
            pytest.param("cluster", id="cluster",
                         marks=[pytest.mark.postgres, pytest.mark.redis])]

CREDIT = 1_000_000
INPUT_PRICE, OUTPUT_PRICE = 2, 1  # output 1 micro/token: a hold can be sized to the micro
CRASH_TEXT = "one two three"
CRASH_MAX_TOKENS = 1000
# The fake counts words: 3 prompt tokens, "Echo: one two three" is 4 completion tokens.
CRASH_COST = 3 * INPUT_PRICE + 4 * OUTPUT_PRICE
FOLLOW_UP_TEXT = "ping"
FOLLOW_UP_COST = 1 * INPUT_PRICE + 2 * OUTPUT_PRICE  # "Echo: ping"
RECOVERY_S = 35
ROOT = Path(__file__).resolve().parents[2]


def test_the_crash_steps_are_exactly_the_documented_ones():
    assert crashpoints.STEPS == STEPS


def test_every_crash_step_is_reached_by_a_crash_point_call_in_the_source():
    call = re.compile(r"""crash_point\(\s*["']([A-Za-z0-9_]+)["']\s*\)""")
    found: dict[str, list[str]] = {}
    for package in ("application", "projections", "entrypoints"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for step in call.findall(path.read_text()):
                found.setdefault(step, []).append(str(path.relative_to(ROOT)))
    assert set(STEPS) - set(found) == set(), f"steps without a crash_point call: {found}"
    assert set(found) - set(STEPS) == set(), "crash_point calls naming no known step"


@pytest.mark.parametrize("step", [pytest.param(s, id=s) for s in STEPS])
@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_at_a_step_then_restart_recovers_exactly(backend, step, fake_openai, tmp_path):
    deployment = Deployment(backend, tmp_path)
    try:
        _crash_and_recover(deployment, step, fake_openai)
    finally:
        deployment.close()


def _crash_and_recover(deployment: Deployment, step: str, fake) -> None:
    token = deployment.bootstrap()
    # The projector's crash point may fire on any projected commit, so that case is set up
    # on a clean process; the other steps sit on the request path and set up on the armed one.
    if step == "after_projection":
        with deployment.serve(token) as clean:
            key = _set_up(deployment, clean, fake)
        armed = deployment.serve(token, crash_at=step)
    else:
        armed = deployment.serve(token, crash_at=step)
        key = _set_up(deployment, armed, fake)
    assert fake.chat_requests() == []
    if step == "mid_stream":
        fake.default = Behaviour(chunk_interval=0.05)  # several chunks, some time apart

    seen = _send_crash_request(armed, key, stream=step == "mid_stream")
    status = armed.wait_dead(timeout=10)
    if status is None:
        armed.stop()
        pytest.fail(f"serve never reached crash_point({step!r}) (request: {seen}); "
                    f"log:\n{armed.output()}")
    assert status == -signal.SIGKILL, f"serve exited {status}, not by SIGKILL:\n{armed.output()}"
    if step in MUST_DROP:
        assert not seen["complete"], f"a full answer came back before the crash: {seen}"
    if step == "mid_stream":
        assert seen["status"] == 200 and seen["data_events"] >= 1, seen
    provider_calls = len(fake.chat_requests())
    assert provider_calls == (0 if step in NOT_CALLED else 1), provider_calls

    restarted = deployment.serve(token)
    streams = deployment.request_streams()
    crash_ids = list(streams)
    if step == "before_hold_commit":
        assert crash_ids == [], f"a hold was committed before its commit point: {crash_ids}"
    else:
        assert len(crash_ids) == 1, crash_ids
        if seen["request_id"] is not None:
            assert crash_ids == [seen["request_id"]]
    crash_id = crash_ids[0] if crash_ids else None

    view, record, held = _wait_recovered(restarted, key, crash_id)
    assert record is None or record["status"] in TERMINAL
    follow_up_id = _follow_up_needs_the_whole_balance(restarted, key, view["available_micros"],
                                                      held)
    follow_up = _wait_until(lambda: _ended(restarted, follow_up_id), 10, "the follow-up to end")
    assert follow_up["status"] == "settled", follow_up
    assert follow_up["charged_micros"] == FOLLOW_UP_COST, follow_up

    # The crash request's charge, as the read model has it; cross-checked with events below.
    crash_charged = record["charged_micros"] if record is not None else 0
    final = _wait_until(lambda: _idle_balance(restarted, key), 10, "no hold left open")
    expected_balance = CREDIT - crash_charged - FOLLOW_UP_COST
    assert final["balance_micros"] == expected_balance, (final, crash_charged)
    assert final["available_micros"] == final["balance_micros"], final
    assert all(pool["balance_micros"] >= 0 for pool in final["pools"].values()), final
    assert sum(line["amount_micros"] for line in ledger(restarted, key)) == expected_balance
    restarted.stop()

    streams = deployment.request_streams()
    assert set(streams) == {*crash_ids, follow_up_id}, list(streams)
    for request_id, events in streams.items():
        names = [event_name(e) for e in events]
        terminal = [n for n in names if n in TERMINAL_EVENTS]
        assert names[0] == "HoldPlaced" and len(terminal) == 1 and len(names) == 2, \
            f"{request_id}: {names}"
    if crash_id is not None:
        events = streams[crash_id]
        end = events[-1]
        if step in SETTLED:
            assert event_name(end) == "HoldSettled", f"durable settlement lost: {events}"
            assert end.charged_micros == CRASH_COST == crash_charged, (end, crash_charged)
        else:
            # No settlement was committed before the kill: whatever ended it charged 0.
            assert event_name(end) in ("HoldVoided", "HoldExpired"), events
            assert crash_charged == 0, record
        assert record is not None and record["status"] == _status_of(end)

    verify = deployment.replay_verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _set_up(deployment: Deployment, server: Server, fake) -> str:
    price_model(server, fake, input_price=str(INPUT_PRICE), output_price=str(OUTPUT_PRICE))
    who = customer(server, credit_micros=CREDIT)
    deployment.account_ids.append(who.account_id)
    view = _wait_until(lambda: (lambda v: v if v["balance_micros"] == CREDIT else None)(
        balance(server, who.key)), 10, "the grant to be projected")
    assert view["available_micros"] == CREDIT and view["open_holds"] == 0, view
    return who.key


def _send_crash_request(server: Server, key: str, stream: bool) -> dict[str, Any]:
    """Send the request the process dies on; what came back, if anything."""
    body: dict[str, Any] = {"model": MODEL, "max_tokens": CRASH_MAX_TOKENS,
                            "messages": [{"role": "user", "content": CRASH_TEXT}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    seen: dict[str, Any] = {"status": None, "request_id": None, "complete": False,
                            "data_events": 0, "error": None}
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=server.url, timeout=20) as client, \
                client.stream("POST", "/v1/chat/completions", json=body,
                              headers=headers) as response:
            seen["status"] = response.status_code
            seen["request_id"] = response.headers.get("x-request-id")
            if not stream:
                response.read()
                seen["complete"] = response.status_code == 200
                return seen
            for line in response.iter_lines():
                if line == "data: [DONE]":
                    seen["complete"] = True
                elif line.startswith("data: "):
                    seen["data_events"] += 1
    except httpx.TimeoutException as error:
        pytest.fail(f"the crash request hung instead of dropping: {error!r}")
    except httpx.TransportError as error:
        seen["error"] = repr(error)
    return seen


def _wait_until(probe, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def _ended(server: Server, request_id: str) -> dict | None:
    response = server.admin("GET", f"/admin/requests/{request_id}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    record = response.json()
    return record if record["status"] in TERMINAL else None


def _idle_balance(server: Server, key: str) -> dict | None:
    view = balance(server, key)
    return view if view["open_holds"] == 0 else None


def _wait_recovered(server: Server, key: str,
                    crash_id: str | None) -> tuple[dict, dict | None, dict]:
    """Poll (up to RECOVERY_S) until the crash request has ended, the read model shows no
    open hold, and the hold store offers exactly what the read model says is available."""
    deadline = time.monotonic() + RECOVERY_S
    while True:
        view = balance(server, key)
        record = None
        if crash_id is not None:
            response = server.admin("GET", f"/admin/requests/{crash_id}")
            assert response.status_code in (200, 404), response.text
            record = response.json() if response.status_code == 200 else None
        ended = crash_id is None or (record is not None and record["status"] in TERMINAL)
        assert view["balance_micros"] >= 0, view
        held = None
        if ended and view["open_holds"] == 0 and view["available_micros"] == \
                view["balance_micros"]:
            held = _hold_store_offer(server, key, view["available_micros"])
            if held["available_micros"] == view["available_micros"]:
                return view, record, held
        if time.monotonic() > deadline:
            leak = "" if held is None else \
                f"; the hold store reserves {view['available_micros'] - held['available_micros']}" \
                f" micros the event store has no open hold for ({held})"
            pytest.fail(f"not recovered {RECOVERY_S}s after restart: request "
                        f"{record['status'] if record else 'unrecorded'}, balance {view}{leak}")
        time.sleep(0.25)


def _probe_body(max_tokens: int) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": FOLLOW_UP_TEXT}]}


def _hold_store_offer(server: Server, key: str, available: int) -> dict:
    """What the hold store says is available, from the 402 of a hold one input's worth
    beyond ``available`` (a refused hold records nothing and calls no provider)."""
    probe = server.http.post("/v1/chat/completions", json=_probe_body(available),
                             headers={"Authorization": f"Bearer {key}"})
    assert probe.status_code == 402, probe.text
    details = probe.json()["error"]["details"]
    return {**details, "probe_max_tokens": available}


def _follow_up_needs_the_whole_balance(server: Server, key: str, available: int,
                                       held: dict) -> str:
    """A request whose hold is exactly the available balance is admitted: the hold store
    keeps no reservation the event store has not got."""
    input_part = held["required_micros"] - held["probe_max_tokens"] * OUTPUT_PRICE
    follow_tokens = available - input_part
    assert follow_tokens > 0, held
    response = server.http.post("/v1/chat/completions", json=_probe_body(follow_tokens),
                                headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, \
        f"a hold of the whole available {available} micros was refused: {response.text}"
    assert response.json()["choices"][0]["message"]["content"] == "Echo: ping"
    return response.headers["x-request-id"]


def _status_of(event: Any) -> str:
    return {"HoldSettled": "settled", "HoldVoided": "voided",
            "HoldExpired": "expired"}[event_name(event)]
