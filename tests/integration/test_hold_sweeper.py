"""The hold sweeper over every backend: stale holds end with HoldExpired at no charge (6.4)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from adapters.clock import FrozenClock
from application.sweeper import HOLD_TTL, sweep_expired_holds
from domain.inference_request import InferenceRequest
from integration.support import place_hold, settle, stream_events


def caught_up(gateway) -> None:
    for context, position in gateway.stores.max_positions().items():
        assert gateway.projector.wait_for(context, position, timeout=10)


def sweep(gateway, at: datetime) -> int:
    return sweep_expired_holds(gateway.stores.requests, gateway.balances.expired_holds,
                               FrozenClock(at))


def types(gateway, request_id: str) -> list[str]:
    return [e.type for e in stream_events(gateway.stores.requests,
                                          InferenceRequest.create_id(request_id))]


def funded_account(gateway, amount: int = 10_000_000) -> str:
    account_id = gateway.accounts.open_account("sweep@example.com", "dev", "staff:test")
    gateway.accounts.grant_credits(account_id, amount, "credit for the sweeper test",
                                   "usr_admin")
    return account_id


def test_a_hold_older_than_the_ttl_expires_at_no_charge_and_a_settled_one_is_untouched(
        gateway):
    account_id = funded_account(gateway)
    stale, _ = place_hold(gateway, account_id, 2_000_000)
    done, _ = place_hold(gateway, account_id, 1_000_000)
    settle(gateway, done, 400_000)
    caught_up(gateway)
    later = datetime.now(UTC) + HOLD_TTL + timedelta(seconds=1)

    assert sweep(gateway, later) == 1
    caught_up(gateway)

    assert types(gateway, stale.request_id) == ["InferenceRequest.HoldPlaced",
                                                "InferenceRequest.HoldExpired"]
    expired = stream_events(gateway.stores.requests,
                            InferenceRequest.create_id(stale.request_id))[-1]
    assert expired.data["hold_micros"] == 2_000_000
    assert types(gateway, done.request_id) == ["InferenceRequest.HoldPlaced",
                                               "InferenceRequest.HoldSettled"]
    record = gateway.usage.record(stale.request_id)
    assert (record["status"], record["charged_micros"]) == ("expired", 0)
    assert gateway.usage.record(done.request_id)["status"] == "settled"
    view = gateway.balances.balance(account_id, int(time.time()))
    assert view["balance_micros"] == 10_000_000 - 400_000
    assert view["open_holds"] == 0
    assert view["available_micros"] == 10_000_000 - 400_000
    assert gateway.holds.available(account_id, int(time.time())) == 10_000_000 - 400_000


def test_a_hold_younger_than_the_ttl_is_left_open(gateway):
    account_id = funded_account(gateway)
    young, _ = place_hold(gateway, account_id, 2_000_000)
    caught_up(gateway)

    assert sweep(gateway, datetime.now(UTC) + HOLD_TTL - timedelta(seconds=5)) == 0

    assert types(gateway, young.request_id) == ["InferenceRequest.HoldPlaced"]
    assert gateway.balances.balance(account_id, int(time.time()))["open_holds"] == 1


def test_a_second_sweep_expires_nothing_more(gateway):
    account_id = funded_account(gateway)
    stale, _ = place_hold(gateway, account_id, 2_000_000)
    caught_up(gateway)
    later = datetime.now(UTC) + HOLD_TTL + timedelta(seconds=1)
    assert sweep(gateway, later) == 1
    caught_up(gateway)

    assert sweep(gateway, later + timedelta(seconds=30)) == 0

    assert types(gateway, stale.request_id).count("InferenceRequest.HoldExpired") == 1


def test_a_hold_settled_after_the_sweeper_listed_it_keeps_its_settlement(gateway):
    """The race of 6.4: the read model still shows the hold open when the sweeper looks."""
    account_id = funded_account(gateway)
    racing, _ = place_hold(gateway, account_id, 2_000_000)
    caught_up(gateway)
    listed = gateway.balances.expired_holds
    settled_meanwhile = []

    def list_then_settle(cutoff: str) -> list[str]:
        ids = listed(cutoff)
        if not settled_meanwhile:
            settled_meanwhile.append(settle(gateway, racing, 300_000))
        return ids

    expired = sweep_expired_holds(gateway.stores.requests, list_then_settle,
                                  FrozenClock(datetime.now(UTC) + HOLD_TTL * 2))
    caught_up(gateway)

    assert expired == 0
    assert types(gateway, racing.request_id) == ["InferenceRequest.HoldPlaced",
                                                 "InferenceRequest.HoldSettled"]
    assert gateway.balances.balance(account_id, int(time.time()))["balance_micros"] == \
        10_000_000 - 300_000


def test_a_reservation_never_recorded_is_cancelled_only_once_its_worker_is_dead(tmp_path):
    """A worker that died between reserving in Redis and writing HoldPlaced leaves an orphan:
    the reconciler cancels it as soon as the worker's heartbeat is gone, asking the event
    store (not the read model) whether the hold was recorded; a live worker's is kept."""
    from conftest import close_gateway, open_gateway

    gateway, schema = open_gateway("sqlite", tmp_path, redis=True)
    try:
        account_id = gateway.accounts.open_account("orphan@example.com", "dev", "staff:test")
        gateway.accounts.grant_credits(account_id, 1_000, "credit for an orphan test",
                                       "usr_test")
        gateway.reconciler.load_account(account_id)
        now = int(time.time())
        live = gateway.workers.worker_id
        gateway.workers.beat()
        assert gateway.holds.place(account_id, "req_live", 300, now, live).status == "reserved"
        assert gateway.holds.place(account_id, "req_dead", 600, now, "wrk_gone").status == \
            "reserved"

        report = gateway.reconciler.reconcile_all()

        assert report.cancelled == ["req_dead"]
        assert gateway.holds.available(account_id, now) == 700
        assert set(gateway.holds.cached_holds(account_id)) == {"req_live"}
    finally:
        close_gateway(gateway, schema)
