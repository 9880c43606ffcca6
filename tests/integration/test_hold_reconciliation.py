"""The hold store is a cache of durable facts (issue 5, findings 1-3): whichever process
projects, however publications are lost, however far the projector lags, its reservations
end up equal to the open holds of the event store, and never below them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from conftest import _create_schema, _drop_schema, make_settings

from entrypoints.bootstrap import Gateway
from entrypoints.maintenance import sweep_once
from integration.support import place_hold, settle
from projections.runner import Projector

SHAPES = [("memory", False), ("sqlite", False), ("postgres", True)]
CREDIT = 1_000_000


@contextmanager
def quiet(backend: str, redis: bool, directory) -> Iterator[Gateway]:
    """A gateway whose projector runs only when the test says so."""
    schema = f"t_{uuid.uuid4().hex[:12]}" if backend == "postgres" else None
    if schema:
        _create_schema(schema)
    gw = Gateway(replace(make_settings(backend, directory, redis=redis, schema=schema),
                         run_projector=False))
    try:
        gw.start()
        yield gw
    finally:
        if getattr(gw.holds, "flush", None):
            gw.holds.flush()
        gw.close()
        if schema:
            _drop_schema(schema)


@pytest.fixture(params=SHAPES, ids=[f"{b}{'+redis' if r else ''}" for b, r in SHAPES])
def gw(request, tmp_path) -> Iterator[Gateway]:
    with quiet(*request.param, tmp_path / "data") as gateway:
        yield gateway


def funded(gw: Gateway, amount: int = CREDIT) -> str:
    account_id = gw.accounts.open_account(f"{uuid.uuid4().hex[:8]}@example.com", "dev",
                                          "staff:test")
    gw.accounts.grant_credits(account_id, amount, "credit for reconciliation", "usr_admin")
    return account_id


def available(gw: Gateway, account_id: str) -> int | None:
    return gw.holds.available(account_id, int(time.time()))


def read_model_available(gw: Gateway, account_id: str) -> int:
    return gw.balances.balance(account_id, int(time.time()))["available_micros"]


def test_holds_are_released_when_another_process_projected_the_settlement(gw):
    """Finding 1: `gatewayz replay --verify` (or any CLI command) projects inline; the
    serving process's projector never sees those events, yet must release the hold."""
    account_id = funded(gw)
    aggregate, _ = place_hold(gw, account_id, 600_000)
    gw.projector.run_until_idle()
    settle(gw, aggregate, 100_000)

    # The other process: with Redis it publishes to the shared store like any projector;
    # with an in-process store its publications land in its own memory, lost to serve.
    shared = gw.settings.redis_url is not None
    Projector(gw.stores, gw.db, after_commit=gw._after_commit if shared else None) \
        .run_until_idle()
    gw.projector.run_until_idle()  # serve's own pass: sees foreign progress

    assert read_model_available(gw, account_id) == 900_000
    assert available(gw, account_id) == 900_000
    assert gw.holds.place(account_id, "req_big", 500_000, int(time.time())).status == \
        "reserved"


def test_a_lost_release_publication_is_repaired_by_the_next_sweep(gw, monkeypatch):
    """Finding 2: the projector's publication fails (Redis away a moment, a crash): nothing
    waits in memory for a retry, the sweep reconciles from the read model and event store."""
    account_id = funded(gw)
    aggregate, _ = place_hold(gw, account_id, 600_000)
    gw.projector.run_until_idle()
    settle(gw, aggregate, 100_000)

    def lost(*_args, **_kwargs):
        raise ConnectionError("hold store away")

    monkeypatch.setattr(gw.holds, "publish", lost)
    gw.projector.run_until_idle()
    monkeypatch.undo()
    assert available(gw, account_id) == 400_000  # still reserved: the release was lost

    sweep_once(gw)

    assert available(gw, account_id) == 900_000


def test_a_committed_but_unprojected_hold_is_never_cancelled_however_old(gw):
    """Finding 3: the projector is down for longer than the TTL. A hold recorded in the
    event store keeps its reservation even though the read model has never heard of it,
    so the same money cannot be spent twice when the projector returns."""
    account_id = funded(gw)
    gw.projector.run_until_idle()
    gw.reconciler.load_account(account_id)
    long_ago = int(time.time()) - 3600
    outcome = gw.holds.place(account_id, "req_old", 700_000, long_ago, "wrk_gone")
    assert outcome.status == "reserved"
    record_hold(gw, account_id, "req_old", 700_000, outcome.reserved_by_pool)

    sweep_once(gw)  # no projector ran: the read model has no row for it

    assert "req_old" in gw.holds.cached_holds(account_id)
    assert available(gw, account_id) == 300_000
    assert gw.holds.place(account_id, "req_next", 400_000, int(time.time())).status == \
        "insufficient"


def test_a_reloaded_store_counts_holds_the_projector_has_not_seen(gw):
    """Finding 3b: the hold store lost its data (Redis flushed, process restarted) while
    holds are committed but unprojected: reloading from the read model alone would offer
    that money again; the reconciler also reads the unprojected tail of the event store."""
    account_id = funded(gw)
    gw.projector.run_until_idle()
    place_hold(gw, account_id, 700_000)  # committed, not projected
    forget(gw)

    gw.reconciler.load_account(account_id)

    assert available(gw, account_id) == 300_000
    assert gw.holds.place(account_id, "req_more", 400_000, int(time.time())).status == \
        "insufficient"


def test_a_projection_publishing_into_an_emptied_store_does_not_resurrect_the_balance(gw):
    account_id = funded(gw)
    gw.projector.run_until_idle()
    place_hold(gw, account_id, 700_000)
    forget(gw)

    gw.projector.run_until_idle()  # publishes the account it touched

    assert available(gw, account_id) is None  # not loaded: the next request loads it
    gw.reconciler.load_account(account_id)
    assert available(gw, account_id) == 300_000


def test_a_dead_workers_open_holds_are_voided_and_released_a_live_ones_kept(gw):
    account_id = funded(gw)
    live, _ = place_hold(gw, account_id, 200_000)
    dead, _ = place_hold(gw, account_id, 300_000)
    gw.projector.run_until_idle()
    with gw.db.transaction() as cur:  # as if another worker had placed it
        cur.execute("UPDATE holds SET worker_id = 'wrk_gone' WHERE request_id = %s",
                    (dead.request_id,))

    done = sweep_once(gw)
    gw.projector.run_until_idle()

    assert done["voided"] == 1
    record = gw.usage.record(dead.request_id)
    assert (record["status"], record["charged_micros"]) == ("voided", 0)
    assert gw.usage.record(live.request_id)["status"] not in ("voided", "expired")
    assert available(gw, account_id) == CREDIT - 200_000
    assert read_model_available(gw, account_id) == CREDIT - 200_000


def record_hold(gw: Gateway, account_id: str, request_id: str, amount: int,
                reserved: dict) -> None:
    from domain.inference_request import InferenceRequest

    gw.stores.requests.save(InferenceRequest(
        request_id=request_id, account_id=account_id, key_id="key_test",
        endpoint="chat.completions", requested_model="acme/chat-1",
        candidate_models=["acme/chat-1"], price_snapshot={}, estimated_input_tokens=1,
        output_limit=1, hold_micros=amount, reserved_by_pool=reserved, stream=False,
        worker_id="wrk_gone"))


def forget(gw: Gateway) -> None:
    """The hold store loses everything it cached."""
    if hasattr(gw.holds, "flush"):
        gw.holds.flush()
    else:
        gw.holds.__init__()


def test_verify_names_the_first_difference_and_reconcile_clears_it(gw):
    account_id = funded(gw)
    aggregate, _ = place_hold(gw, account_id, 600_000)
    gw.projector.run_until_idle()
    assert gw.reconciler.verify(confirm_after_s=0) == []

    gw.holds.cancel(account_id, aggregate.request_id)  # the cache loses a reservation
    differences = gw.reconciler.verify(confirm_after_s=0)

    assert differences == [f"{account_id}: open hold {aggregate.request_id} is not reserved "
                           "in the hold store"]
    gw.reconciler.reconcile_all()
    assert gw.reconciler.verify(confirm_after_s=0) == []
    assert available(gw, account_id) == CREDIT - 600_000


def test_the_holds_verify_command_compares_redis_with_the_event_store(tmp_path, monkeypatch,
                                                                      capsys):
    from conftest import PEPPER

    from entrypoints import cli

    with quiet("postgres", True, tmp_path / "data") as gateway:
        account_id = funded(gateway)
        aggregate, _ = place_hold(gateway, account_id, 600_000)
        gateway.projector.run_until_idle()
        settings = gateway.settings
        for name, value in (("DATABASE_URL", settings.database_url),
                            ("GATEWAYZ_DB_SCHEMA", settings.schema),
                            ("REDIS_URL", settings.redis_url),
                            ("GATEWAYZ_REDIS_PREFIX", settings.redis_prefix),
                            ("GATEWAYZ_KEY_PEPPER", PEPPER.decode()),
                            ("GATEWAYZ_MASTER_KEY", bytes(range(32)).hex())):
            monkeypatch.setenv(name, value)

        assert cli.main(["holds", "--verify"]) == 0
        assert "matches" in capsys.readouterr().out

        gateway.holds.cancel(account_id, aggregate.request_id)
        assert cli.main(["holds", "--verify"]) == 1
        out = capsys.readouterr().out
        assert aggregate.request_id in out and "FAILED" in out
