"""One contract for both hold stores: Redis (shared by workers) and in-process (6.3, 6.4)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from conftest import require_redis

from adapters.holds_memory import InProcessHoldStore
from adapters.holds_redis import RedisHoldStore
from application.ports import BalanceSnapshot

HOLD = 1_000_000
NOW = 1_900_000_000


def snapshot(version: int, trial: int = 0, allowance: int = 0, purchased: int = 0,
             trial_ends: int = NOW + 3600, allowance_active: bool = True,
             open_holds: dict | None = None) -> BalanceSnapshot:
    return BalanceSnapshot(pools={"trial": trial, "allowance": allowance,
                                  "purchased": purchased},
                           trial_ends_epoch=trial_ends, allowance_active=allowance_active,
                           version=version, open_holds=open_holds or {})


@pytest.fixture(params=["redis", "in-process"])
def store(request) -> Iterator:
    if request.param == "in-process":
        yield InProcessHoldStore()
        return
    redis_store = RedisHoldStore(require_redis(), prefix=f"gwtest-{uuid.uuid4().hex[:10]}")
    yield redis_store
    redis_store.flush()
    redis_store.client.close()


def account() -> str:
    return f"acct_{uuid.uuid4().hex}"


def test_an_account_the_store_has_never_seen_is_unknown(store):
    assert store.place(account(), "req_1", HOLD, NOW).status == "unknown_account"
    assert store.available(account(), NOW) is None


def test_64_threads_racing_for_one_account_reserve_exactly_the_10_holds_it_covers(store):
    acct = account()
    store.reconcile(acct, snapshot(1, purchased=10 * HOLD), [], {})
    barrier = threading.Barrier(64)
    outcomes: list[str] = []
    lock = threading.Lock()

    def place(n: int) -> None:
        barrier.wait()
        outcome = store.place(acct, f"req_{n}", HOLD, NOW)
        with lock:
            outcomes.append(outcome.status)

    threads = [threading.Thread(target=place, args=(n,)) for n in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert outcomes.count("reserved") == 10
    assert outcomes.count("insufficient") == 54
    assert store.available(acct, NOW) == 0


def test_a_refused_hold_reports_what_is_available(store):
    acct = account()
    store.reconcile(acct, snapshot(1, purchased=HOLD + 5), [], {})
    store.place(acct, "req_a", HOLD, NOW)

    outcome = store.place(acct, "req_b", HOLD, NOW)

    assert outcome.status == "insufficient"
    assert outcome.available == 5
    assert outcome.reserved_by_pool is None


def test_holds_reserve_in_spend_order_trial_then_allowance_then_purchased(store):
    acct = account()
    store.reconcile(acct, snapshot(1, trial=300, allowance=500, purchased=10_000), [], {})

    first = store.place(acct, "req_1", 600, NOW)
    second = store.place(acct, "req_2", 1_000, NOW)

    assert first.reserved_by_pool == {"trial": 300, "allowance": 300, "purchased": 0}
    assert second.reserved_by_pool == {"trial": 0, "allowance": 200, "purchased": 800}
    assert store.available(acct, NOW) == 10_800 - 1_600


def test_an_ended_trial_and_an_inactive_allowance_cannot_be_spent(store):
    acct = account()
    store.reconcile(acct, snapshot(1, trial=5_000, allowance=5_000, purchased=100,
                                 trial_ends=NOW, allowance_active=False), [], {})

    assert store.available(acct, NOW) == 100
    assert store.available(acct, NOW - 1) == 5_100  # the trial was still running then
    assert store.place(acct, "req_1", 101, NOW).status == "insufficient"
    assert store.place(acct, "req_2", 100, NOW).reserved_by_pool == \
        {"trial": 0, "allowance": 0, "purchased": 100}


def test_a_snapshot_with_an_older_version_never_overwrites_a_newer_one(store):
    acct = account()
    store.reconcile(acct, snapshot(7, purchased=7 * HOLD), [], {})

    store.publish(acct, snapshot(6, purchased=100 * HOLD), [])
    assert store.available(acct, NOW) == 7 * HOLD

    store.publish(acct, snapshot(7, purchased=8 * HOLD), [])  # same version: idempotent
    assert store.available(acct, NOW) == 8 * HOLD
    store.publish(acct, snapshot(9, purchased=2 * HOLD), [])
    assert store.available(acct, NOW) == 2 * HOLD


def test_released_holds_restore_availability_even_with_an_older_snapshot(store):
    acct = account()
    store.reconcile(acct, snapshot(5, purchased=3 * HOLD), [], {})
    for n in range(3):
        assert store.place(acct, f"req_{n}", HOLD, NOW).status == "reserved"
    assert store.available(acct, NOW) == 0

    store.publish(acct, snapshot(6, purchased=3 * HOLD), ["req_0"])
    assert store.available(acct, NOW) == HOLD
    store.publish(acct, snapshot(4, purchased=0), ["req_1", "req_unknown"])
    assert store.available(acct, NOW) == 2 * HOLD
    store.publish(acct, snapshot(6, purchased=3 * HOLD), ["req_1"])  # released twice
    assert store.available(acct, NOW) == 2 * HOLD
    store.cancel(acct, "req_2")
    assert store.available(acct, NOW) == 3 * HOLD


def test_loading_brings_in_open_holds_and_an_older_load_never_overwrites_it(store):
    acct = account()
    open_holds = {"req_old": {"trial": 0, "allowance": 0, "purchased": 2 * HOLD}}

    store.reconcile(acct, snapshot(3, purchased=5 * HOLD), [], open_holds)
    assert store.available(acct, NOW) == 3 * HOLD
    store.reconcile(acct, snapshot(2, purchased=50 * HOLD), [], {})
    assert store.available(acct, NOW) == 3 * HOLD
    store.publish(acct, snapshot(4, purchased=5 * HOLD), ["req_old"])
    assert store.available(acct, NOW) == 5 * HOLD


def test_a_settled_charge_and_its_release_in_one_publish_leave_the_rest_available(store):
    acct = account()
    store.reconcile(acct, snapshot(1, purchased=10 * HOLD), [], {})
    store.place(acct, "req_1", 4 * HOLD, NOW)
    assert store.available(acct, NOW) == 6 * HOLD

    # The projector settles req_1 at 1.5 holds: one snapshot, with the hold released.
    store.publish(acct, snapshot(2, purchased=10 * HOLD - HOLD - HOLD // 2), ["req_1"])

    assert store.available(acct, NOW) == 8 * HOLD + HOLD // 2


def test_one_account_running_dry_leaves_another_untouched(store):
    a, b = account(), account()
    store.reconcile(a, snapshot(1, purchased=HOLD), [], {})
    store.reconcile(b, snapshot(1, purchased=HOLD), [], {})

    store.place(a, "req_1", HOLD, NOW)

    assert store.available(a, NOW) == 0
    assert store.available(b, NOW) == HOLD


def test_a_publication_for_an_account_never_loaded_creates_no_balance(store):
    """After Redis lost its data, a projector commit must not rebuild a balance without the
    reservations of its open holds: only reconcile (with the holds) loads an account."""
    acct = account()
    store.publish(acct, snapshot(3, purchased=10 * HOLD), [])

    assert store.available(acct, NOW) is None
    assert store.place(acct, "req_1", HOLD, NOW).status == "unknown_account"


def test_reconcile_releases_ended_holds_adds_open_ones_and_recounts(store):
    acct = account()
    store.reconcile(acct, snapshot(1, purchased=10 * HOLD), [], {"req_open": held(2 * HOLD)})
    assert store.place(acct, "req_1", HOLD, NOW, "wrk_a").status == "reserved"
    assert store.available(acct, NOW) == 7 * HOLD

    # req_1 ended (charged HOLD // 2) as of version 2; req_open is still open.
    store.reconcile(acct, snapshot(2, purchased=10 * HOLD - HOLD // 2), ["req_1"],
                    {"req_open": held(2 * HOLD)})

    assert store.available(acct, NOW) == 8 * HOLD - HOLD // 2
    cached = store.cached_holds(acct)
    assert set(cached) == {"req_open"} and cached["req_open"].parts == held(2 * HOLD)


def test_an_older_reconcile_still_releases_but_never_adds_or_rolls_pools_back(store):
    acct = account()
    store.reconcile(acct, snapshot(5, purchased=4 * HOLD), [], {})
    assert store.place(acct, "req_1", HOLD, NOW).status == "reserved"

    # Read before version 5 was published: it saw req_gone open, which has ended since.
    store.reconcile(acct, snapshot(4, purchased=100 * HOLD), ["req_1"],
                    {"req_gone": held(HOLD)})

    assert store.available(acct, NOW) == 4 * HOLD
    assert store.cached_holds(acct) == {}


def test_a_hold_id_in_use_is_refused_not_overwritten(store):
    acct = account()
    store.reconcile(acct, snapshot(1, purchased=10 * HOLD), [], {})
    assert store.place(acct, "req_1", HOLD, NOW, "wrk_a").status == "reserved"

    assert store.place(acct, "req_1", 5 * HOLD, NOW, "wrk_b").status == "duplicate"
    assert store.available(acct, NOW) == 9 * HOLD
    cached = store.cached_holds(acct)["req_1"]
    assert (cached.worker_id, cached.placed_epoch) == ("wrk_a", NOW)


def held(amount: int) -> dict[str, int]:
    return {"trial": 0, "allowance": 0, "purchased": amount}


def test_the_redis_store_is_shared_by_two_workers():
    url = require_redis()
    prefix = f"gwtest-{uuid.uuid4().hex[:10]}"
    worker_a, worker_b = RedisHoldStore(url, prefix), RedisHoldStore(url, prefix)
    try:
        acct = account()
        worker_a.reconcile(acct, snapshot(1, purchased=2 * HOLD), [], {})

        assert worker_a.place(acct, "req_a", HOLD, int(time.time())).status == "reserved"
        assert worker_b.place(acct, "req_b", HOLD, int(time.time())).status == "reserved"
        assert worker_b.place(acct, "req_c", 1, int(time.time())).status == "insufficient"
    finally:
        worker_a.flush()
        worker_a.client.close()
        worker_b.client.close()
