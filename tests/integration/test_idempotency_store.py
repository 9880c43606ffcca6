"""The idempotency record store over SQLite and PostgreSQL (spec 11.2): one claim wins, a
claim left by a crashed or dead worker is taken over (attempt + 1), errors release or mark
the key unknown, and the attempt number only grows (application/idempotency.py)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from conftest import POSTGRES_URL

from adapters.clock import FrozenClock
from adapters.idempotency_sql import SqlIdempotencyStore
from adapters.persistence.database import open_database
from adapters.persistence.migrate import migrate
from adapters.persistence.store_config import StoreConfig
from application.idempotency import CLAIM_TTL, RETENTION, command_id

SCOPE, KEY, BODY, OTHER = "account:acct_1", "key-1", "a" * 64, "b" * 64


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "sqlite":
        database = open_database(StoreConfig.sqlite(str(tmp_path / "events.sqlite")))
    else:
        schema = request.getfixturevalue("pg_schema")
        database = open_database(StoreConfig.from_url(POSTGRES_URL, schema))
    migrate(database)
    yield database
    database.close()


@pytest.fixture
def clock():
    return FrozenClock()


def store(db, clock, worker: str = "w1", alive=None) -> SqlIdempotencyStore:
    return SqlIdempotencyStore(db, worker_id=worker, worker_alive=alive, clock=clock)


def record(db) -> tuple:
    with db.transaction() as cur:
        cur.execute("SELECT state, attempt, claimed_by, body FROM idempotency_records "
                    "WHERE scope = %s AND idem_key = %s", (SCOPE, KEY))
        return cur.fetchone()


def test_a_first_claim_wins_repeats_wait_and_a_completed_key_replays(db, clock):
    one = store(db, clock)
    assert one.claim(SCOPE, KEY, BODY).state == "new"
    assert one.claim(SCOPE, KEY, BODY).state == "in_progress"
    assert one.claim(SCOPE, KEY, OTHER).state == "mismatch"
    assert one.complete(SCOPE, KEY, 201, "application/json", '{"id":1}', attempt=0)
    replay = one.claim(SCOPE, KEY, BODY)
    assert (replay.state, replay.status, replay.body) == ("done", 201, '{"id":1}')
    assert one.claim(SCOPE, KEY, OTHER).state == "mismatch"
    assert record(db)[:3] == ("done", 0, "w1")


def test_a_released_key_is_free_for_any_body_with_the_next_attempt(db, clock):
    one = store(db, clock)
    one.claim(SCOPE, KEY, BODY)
    one.release(SCOPE, KEY, attempt=0)
    again = one.claim(SCOPE, KEY, OTHER)
    assert (again.state, again.attempt) == ("new", 1)
    assert command_id(SCOPE, KEY, again.attempt) != command_id(SCOPE, KEY, 0)


def test_an_abandoned_key_answers_unknown_and_never_runs_again(db, clock):
    one = store(db, clock)
    one.claim(SCOPE, KEY, BODY)
    one.abandon(SCOPE, KEY, attempt=0)
    clock.advance(CLAIM_TTL.total_seconds() * 10)
    assert one.claim(SCOPE, KEY, BODY).state == "unknown"
    assert store(db, clock, "w2", alive=lambda w: False).claim(SCOPE, KEY, BODY).state \
        == "unknown"


def test_a_claim_older_than_the_hold_ttl_is_taken_over_and_the_loser_cannot_finish(
        db, clock):
    crashed, next_worker = store(db, clock, "w1"), store(db, clock, "w2")
    crashed.claim(SCOPE, KEY, BODY)
    clock.advance(CLAIM_TTL.total_seconds() - 1)
    assert next_worker.claim(SCOPE, KEY, BODY).state == "in_progress"
    assert next_worker.claim(SCOPE, KEY, OTHER).state == "mismatch"  # the key stays bound
    clock.advance(2)

    taken = next_worker.claim(SCOPE, KEY, BODY)

    assert (taken.state, taken.attempt) == ("new", 1)
    assert record(db)[:3] == ("in_progress", 1, "w2")
    assert crashed.complete(SCOPE, KEY, 200, "application/json", "late", attempt=0) is False
    crashed.release(SCOPE, KEY, attempt=0)
    crashed.abandon(SCOPE, KEY, attempt=0)
    assert record(db)[:2] == ("in_progress", 1)
    assert next_worker.complete(SCOPE, KEY, 200, "application/json", "ok", attempt=1)
    assert crashed.claim(SCOPE, KEY, BODY).body == "ok"


def test_a_claim_of_a_dead_worker_is_taken_over_at_once_and_a_live_ones_never(db, clock):
    store(db, clock, "w1").claim(SCOPE, KEY, BODY)

    assert store(db, clock, "w2", alive=lambda w: True).claim(SCOPE, KEY, BODY).state \
        == "in_progress"

    def unsure(worker: str) -> bool:
        raise ConnectionError("heartbeats unreadable")

    assert store(db, clock, "w2", alive=unsure).claim(SCOPE, KEY, BODY).state == "in_progress"
    taken = store(db, clock, "w2", alive=lambda w: w != "w1").claim(SCOPE, KEY, BODY)
    assert (taken.state, taken.attempt) == ("new", 1)
    assert record(db)[:3] == ("in_progress", 1, "w2")
    # w2 is alive: a third worker waits.
    assert store(db, clock, "w3", alive=lambda w: w != "w1").claim(SCOPE, KEY, BODY).state \
        == "in_progress"


def test_a_key_used_again_after_24_hours_starts_a_new_attempt(db, clock):
    one = store(db, clock)
    one.claim(SCOPE, KEY, BODY)
    one.complete(SCOPE, KEY, 200, "application/json", "{}", attempt=0)
    clock.advance(RETENTION.total_seconds() + 1)
    again = one.claim(SCOPE, KEY, OTHER)
    assert (again.state, again.attempt) == ("new", 1)
    assert record(db) == ("in_progress", 1, "w1", None)


def test_a_legacy_in_progress_row_without_claim_columns_is_taken_over_after_the_ttl(
        db, clock):
    with db.transaction() as cur:
        cur.execute("INSERT INTO idempotency_records (scope, idem_key, body_hash, state, "
                    "created_at) VALUES (%s, %s, %s, 'in_progress', %s)",
                    (SCOPE, KEY, BODY,
                     (clock.now() - CLAIM_TTL - timedelta(seconds=1)).isoformat()))
    taken = store(db, clock).claim(SCOPE, KEY, BODY)
    assert (taken.state, taken.attempt) == ("new", 1)


@pytest.mark.parametrize("stale", [False, True], ids=["fresh-key", "stale-claim"])
def test_concurrent_claims_start_exactly_one_run(db, clock, stale):
    if stale:
        store(db, clock, "crashed").claim(SCOPE, KEY, BODY)
        clock.advance(CLAIM_TTL.total_seconds() + 1)
    workers = [store(db, clock, f"w{i}") for i in range(8)]
    barrier = threading.Barrier(len(workers))
    results: list[str] = []
    lock = threading.Lock()

    def run(worker: SqlIdempotencyStore) -> None:
        barrier.wait()
        state = worker.claim(SCOPE, KEY, BODY).state
        with lock:
            results.append(state)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["in_progress"] * 7 + ["new"]
    assert record(db)[1] == (1 if stale else 0)


def test_command_ids_are_stable_per_scope_key_and_attempt():
    assert command_id(SCOPE, KEY) == command_id(SCOPE, KEY, 0)
    ids = {command_id(SCOPE, KEY), command_id(SCOPE, KEY, 1), command_id(SCOPE, KEY, 2),
           command_id("account:acct_2", KEY), command_id(SCOPE, "key-2")}
    assert len(ids) == 5
