"""Helpers for the integration tests: raw event reads, an independent ledger fold, holds.

Everything here reads the event store's stored bytes itself (json.loads of the recorded
state), so a fold computed here is independent of the projections it is compared with.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from conftest import _create_schema, _drop_schema, make_settings

from domain.ids import new_id
from domain.inference_request import InferenceRequest
from entrypoints.bootstrap import Gateway

POOLS = ("trial", "allowance", "purchased")
TERMINAL_TYPES = ("InferenceRequest.HoldSettled", "InferenceRequest.HoldVoided",
                  "InferenceRequest.HoldExpired")
STAFF = "usr_integration-admin"


@dataclass(frozen=True)
class RawEvent:
    position: int
    stream: uuid.UUID
    version: int
    type: str  # "Aggregate.Event", taken from the stored topic
    data: dict[str, Any]
    raw: bytes


def type_of(topic: str) -> str:
    return topic.rsplit(":", 1)[-1]


def raw_events(app: Any, page: int = 1000) -> list[RawEvent]:
    """Every event of one application's table, in position order, decoded from raw bytes."""
    out: list[RawEvent] = []
    start = 1
    while True:
        notes = app.recorder.select_notifications(start=start, limit=page)
        for note in notes:
            state = bytes(note.state)
            out.append(RawEvent(note.id, note.originator_id, note.originator_version,
                                type_of(note.topic), json.loads(state), state))
        if len(notes) < page:
            return out
        start = notes[-1].id + 1


def stream_events(app: Any, stream: uuid.UUID) -> list[RawEvent]:
    return [RawEvent(0, e.originator_id, e.originator_version, type_of(e.topic),
                     json.loads(bytes(e.state)), bytes(e.state))
            for e in app.recorder.select_events(stream)]


def fold_pools(gateway: Gateway, account_id: str) -> dict[str, int]:
    """The account's pools folded straight from the stored events: credits minus charges.

    An allowance reset is folded as the facts it records: minus the unused allowance it
    forfeited, plus the plan amount, so the fold does not depend on event order.
    """
    from domain.wallet import Wallet

    pools = dict.fromkeys(POOLS, 0)
    for event in stream_events(gateway.stores.accounts, Wallet.create_id(account_id)):
        d = event.data
        if event.type == "Wallet.TrialCreditGranted":
            pools["trial"] += d["amount"]
        elif event.type == "Wallet.TrialCreditForfeited":
            pools["trial"] -= d["amount"]
        elif event.type in ("Wallet.PurchaseCredited", "Wallet.AdminCreditGranted"):
            pools["purchased"] += d["amount"]
        elif event.type == "Wallet.AllowanceReset":
            pools["allowance"] += d["amount"] - d["forfeited_unused"]
        elif event.type == "Wallet.AllowanceForfeited":
            pools["allowance"] -= d["amount"]
    for pool, amount in charged_by_pool(gateway, account_id).items():
        pools[pool] -= amount
    return pools


def request_streams(gateway: Gateway, account_id: str | None = None) -> dict[uuid.UUID, list[RawEvent]]:
    """Request streams (optionally of one account), each with its events in version order."""
    streams: dict[uuid.UUID, list[RawEvent]] = {}
    for event in raw_events(gateway.stores.requests):
        streams.setdefault(event.stream, []).append(event)
    if account_id is None:
        return streams
    return {s: evs for s, evs in streams.items()
            if evs[0].type == "InferenceRequest.HoldPlaced"
            and evs[0].data["account_id"] == account_id}


def charged_by_pool(gateway: Gateway, account_id: str) -> dict[str, int]:
    charged = dict.fromkeys(POOLS, 0)
    for events in request_streams(gateway, account_id).values():
        for event in events:
            if event.type == "InferenceRequest.HoldSettled":
                for pool, amount in event.data["charged_by_pool"].items():
                    charged[pool] += amount
    return charged


def place_hold(gateway: Gateway, account_id: str, amount: int,
               request_id: str | None = None) -> tuple[InferenceRequest | None, Any]:
    """What the inference path does before calling a provider: reserve, then record the hold."""
    request_id = request_id or new_id("req")
    now = int(time.time())
    worker = gateway.workers.worker_id
    outcome = gateway.holds.place(account_id, request_id, amount, now, worker)
    if outcome.status == "unknown_account":
        gateway.reconciler.load_account(account_id)
        outcome = gateway.holds.place(account_id, request_id, amount, now, worker)
        assert outcome.status != "unknown_account", "the account has no projected balance"
    if outcome.status != "reserved":
        return None, outcome
    aggregate = InferenceRequest(
        request_id=request_id, account_id=account_id, key_id="key_integration",
        endpoint="chat.completions", requested_model="acme/chat-1",
        candidate_models=["acme/chat-1"],
        price_snapshot={"fakeup": {"input": "1", "output": "2"}},
        estimated_input_tokens=10, output_limit=100, hold_micros=amount,
        reserved_by_pool=outcome.reserved_by_pool, stream=False, worker_id=worker)
    gateway.stores.requests.save(aggregate)
    return aggregate, outcome


def settle(gateway: Gateway, aggregate: InferenceRequest, cost: int) -> int:
    """Settle a hold at ``cost``; returns what was charged (min of cost and hold)."""
    from domain import pools

    charged = min(cost, aggregate.hold_micros)
    aggregate.settle(provider="fakeup", served_model="acme/chat-1", attempts=[],
                     tokens={"prompt_tokens": 10, "cached_tokens": 0,
                             "completion_tokens": 5, "reasoning_tokens": 0},
                     token_source="provider", cost_micros=cost,
                     charged_by_pool=pools.settle(aggregate.reserved_by_pool, charged),
                     finish_reason="stop", ttfb_ms=1, duration_ms=2,
                     client_disconnected=False)
    gateway.stores.requests.save(aggregate)
    return charged


def assert_plain_json(value: Any, where: str = "$") -> None:
    """JSON-native values only: no library type tags, no floating-point numbers."""
    assert not isinstance(value, float), f"float at {where}: {value!r}"
    if isinstance(value, dict):
        assert "_type_" not in value, f"type tag at {where}: {value!r}"
        for key, item in value.items():
            assert isinstance(key, str)
            assert_plain_json(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_plain_json(item, f"{where}[{index}]")
    else:
        assert value is None or isinstance(value, str | int | bool), f"{where}: {value!r}"


@contextmanager
def quiet_gateway(backend: str, directory: Path) -> Iterator[Gateway]:
    """A gateway whose projector runs only when asked (in the caller's thread).

    Commands still get read-your-writes (the projector's wait runs it inline), and nothing
    changes behind the test's back between two checks.
    """
    schema = None
    if backend == "postgres":
        schema = f"t_{uuid.uuid4().hex[:12]}"
        _create_schema(schema)
    settings = replace(make_settings(backend, directory, schema=schema), run_projector=False)
    gateway = Gateway(settings)
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.close()
        if schema:
            _drop_schema(schema)
