"""Settlements through the group-commit writer from many threads, on every backend (6.4).

A scaled-down run of the 6.4 acceptance case (10,000 settlements from 64 tasks): here 640
settlements of 1-1,000 micros from 64 threads, which keeps the suite inside its budget.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import wait

from eventsourcing.persistence import IntegrityError

from application.group_commit import GroupCommitWriter
from domain import pools
from domain.inference_request import InferenceRequest
from integration.support import TERMINAL_TYPES, place_hold, request_streams

THREADS = 64
PER_THREAD = 10
HOLD = 1_000


def caught_up(gateway) -> None:
    for context, position in gateway.stores.max_positions().items():
        assert gateway.projector.wait_for(context, position, timeout=20)


def settle_via_writer(gateway, aggregate: InferenceRequest, cost: int):
    return settle_via_writer_of(gateway.writer, aggregate, cost)


def settle_via_writer_of(writer: GroupCommitWriter, aggregate: InferenceRequest, cost: int):
    charged = min(cost, aggregate.hold_micros)
    aggregate.settle(provider="fakeup", served_model="acme/chat-1", attempts=[],
                     tokens={"prompt_tokens": 1, "cached_tokens": 0, "completion_tokens": 1,
                             "reasoning_tokens": 0},
                     token_source="provider", cost_micros=cost,
                     charged_by_pool=pools.settle(aggregate.reserved_by_pool, charged),
                     finish_reason="stop", ttfb_ms=1, duration_ms=1,
                     client_disconnected=False)
    return writer.submit(aggregate)


def test_640_settlements_from_64_threads_leave_balance_equal_to_initial_minus_charges(
        gateway):
    initial = THREADS * PER_THREAD * HOLD + 123
    account_id = gateway.accounts.open_account("batch@example.com", "dev", "staff:test")
    gateway.accounts.grant_credits(account_id, initial, "group commit test credit",
                                   "usr_admin")
    holds = [place_hold(gateway, account_id, HOLD)[0] for _ in range(THREADS * PER_THREAD)]
    assert all(holds)
    assert place_hold(gateway, account_id, 124)[0] is None  # only 123 micros left free
    rng = random.Random(640)
    costs = [rng.randint(1, 1_000) for _ in holds]
    barrier = threading.Barrier(THREADS)
    futures: list = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(n * PER_THREAD, (n + 1) * PER_THREAD):
            future = settle_via_writer(gateway, holds[i], costs[i])
            with lock:
                futures.append(future)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done, pending = wait(futures, timeout=60)
    assert not pending
    assert all(f.exception() is None for f in done)
    caught_up(gateway)

    view = gateway.balances.balance(account_id, int(time.time()))
    assert view["balance_micros"] == initial - sum(costs)
    assert view["open_holds"] == 0
    assert gateway.holds.available(account_id, int(time.time())) == initial - sum(costs)
    streams = request_streams(gateway, account_id)
    assert len(streams) == len(holds)
    for events in streams.values():
        assert [e.version for e in events] == [1, 2]
        assert events[1].type == "InferenceRequest.HoldSettled"


def test_two_racing_terminal_events_for_one_hold_record_exactly_one(gateway):
    account_id = gateway.accounts.open_account("race@example.com", "dev", "staff:test")
    gateway.accounts.grant_credits(account_id, 10_000_000, "terminal race test credit",
                                   "usr_admin")
    placed = [place_hold(gateway, account_id, 50_000)[0] for _ in range(20)]
    outcomes = []
    for aggregate in placed:
        # Two copies of the same stream, as a settling worker and the sweeper would hold.
        rival = gateway.stores.requests.repository.get(aggregate.id)
        rival.expire()
        first = settle_via_writer(gateway, aggregate, 20_000)
        second = gateway.writer.submit(rival)
        wait([first, second], timeout=30)
        outcomes.append((first.exception() is None, second.exception() is None))
        loser = first if first.exception() is not None else second
        if loser.exception() is not None:
            assert isinstance(loser.exception(), IntegrityError)
    caught_up(gateway)

    assert all(a != b for a, b in outcomes), outcomes  # exactly one of each pair recorded
    settled = sum(1 for a, _ in outcomes if a)
    view = gateway.balances.balance(account_id, int(time.time()))
    assert view["balance_micros"] == 10_000_000 - settled * 20_000
    assert view["open_holds"] == 0
    for events in request_streams(gateway, account_id).values():
        assert len(events) == 2 and events[1].type in TERMINAL_TYPES


class GatedApp:
    """The requests application behind a gate, so that queued saves pile into one batch."""

    def __init__(self, app) -> None:
        self.app = app
        self.name = app.name
        self.gate = threading.Event()

    def save(self, *objs):
        assert self.gate.wait(timeout=30)
        return self.app.save(*objs)


def test_a_conflict_inside_a_batch_fails_only_the_conflicting_save_and_keeps_its_neighbours(
        gateway):
    account_id = gateway.accounts.open_account("batch@example.com", "dev", "staff:test")
    gateway.accounts.grant_credits(account_id, 10_000_000, "batch conflict test credit",
                                   "usr_admin")
    first, neighbour, contested = (place_hold(gateway, account_id, 50_000)[0]
                                   for _ in range(3))
    rival = gateway.stores.requests.repository.get(contested.id)
    rival.expire()
    gated = GatedApp(gateway.stores.requests)
    writer = GroupCommitWriter(gated)
    try:
        blocker = settle_via_writer_of(writer, first, 1_000)  # the writer waits on the gate
        time.sleep(0.05)
        batch = [settle_via_writer_of(writer, neighbour, 2_000),
                 settle_via_writer_of(writer, contested, 3_000), writer.submit(rival)]
        gated.gate.set()
        wait([blocker, *batch], timeout=30)
    finally:
        writer.close()
    caught_up(gateway)

    assert blocker.exception() is None
    assert batch[0].exception() is None and batch[0].result() > 0
    assert batch[1].exception() is None and batch[1].result() > 0
    assert isinstance(batch[2].exception(), IntegrityError)
    types = {events[0].data["request_id"]: [e.type for e in events[1:]]
             for events in request_streams(gateway, account_id).values()}
    assert types == {first.request_id: ["InferenceRequest.HoldSettled"],
                     neighbour.request_id: ["InferenceRequest.HoldSettled"],
                     contested.request_id: ["InferenceRequest.HoldSettled"]}
    view = gateway.balances.balance(account_id, int(time.time()))
    assert view["balance_micros"] == 10_000_000 - 6_000
    assert view["open_holds"] == 0
