"""The Redis breaker store on the real server (spec 3.3): the Lua script decides exactly as the
pure rules (memory store) on random sequences, workers share one breaker, exactly one of many
concurrent half-open admits wins the probe, keys expire, and an unreachable Redis falls back.
Each test has its own key prefix; Redis unreachable -> the test FAILS (never skips)."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis
from conftest import REDIS_URL, require_redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.breaker_memory import MemoryBreakerStore
from adapters.breaker_redis import RedisBreakerStore
from application.breakers import Breakers, BreakerStoreUnavailable
from domain.circuit_breaker import CLOSED, HALF_OPEN, OPEN, Admission, BreakerPolicy, Transition

pytestmark = pytest.mark.redis

T0 = 1_700_000_000.1  # not a multiple of anything: float arithmetic must still agree
A, B = "p:openai", "pm:openai|openai/gpt-4o"
LONG_TTL = 86_400.0  # property runs span hours of driven time; Redis TTLs run on real time
TIGHT = BreakerPolicy(consecutive_failures=3, window_s=20, window_min_requests=4,
                      window_failure_ratio=0.5, open_s=10, half_open_successes=2, bucket_s=1,
                      idle_ttl_s=LONG_TTL)


@pytest.fixture
def prefix() -> Iterator[str]:
    require_redis()  # unreachable -> the test fails, never skips
    name = f"cbtest-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def store(prefix) -> Iterator[RedisBreakerStore]:
    s = RedisBreakerStore(REDIS_URL, prefix)
    yield s
    s.close()


def test_accept_lines_on_redis(store):
    assert store.admit(A, T0) == Admission(True, CLOSED, None)
    assert [store.record(A, False, T0) for _ in range(4)] == [None] * 4
    assert store.record(A, False, T0 + 1) == Transition(A, CLOSED, OPEN, T0 + 1,
                                                        "consecutive_failures")
    assert store.admit(A, T0 + 2) == Admission(False, OPEN, T0 + 61)
    assert store.admit(B, T0 + 2).allowed  # A open leaves B closed
    probe = store.admit(A, T0 + 61)
    assert probe == Admission(True, HALF_OPEN, None,
                              Transition(A, OPEN, HALF_OPEN, T0 + 61, "half_open_timeout"))
    assert store.admit(A, T0 + 61.5) == Admission(False, HALF_OPEN, T0 + 121)
    assert store.record(A, False, T0 + 70) == Transition(A, HALF_OPEN, OPEN, T0 + 70,
                                                         "probe_failed")
    assert store.peek(A, T0 + 129.9) == Admission(False, OPEN, T0 + 130)  # timer restarted
    for t in (T0 + 130, T0 + 131):
        assert store.admit(A, t).allowed
        result = store.record(A, True, t + 0.5)
    assert result == Transition(A, HALF_OPEN, CLOSED, T0 + 131.5, "probe_succeeded")
    assert store.client.exists(store.redis_key(A)) == 0  # closed and cleared: key deleted


def test_six_of_ten_in_60_s_opens_on_redis(store):
    pattern = [False, False, True, False, False, True, False, True, False, True]
    results = [store.record(A, ok, T0 + 5 * i) for i, ok in enumerate(pattern)]
    assert results == [None] * 9 + [Transition(A, CLOSED, OPEN, T0 + 45, "failure_ratio")]
    (view,) = store.views(T0 + 46)
    assert (view.key, view.state, view.window_requests, view.window_failures) == (
        A, OPEN, 10, 6)


def test_keys_expire_when_idle_and_reset_deletes(store):
    store.record(A, False, T0)
    ttl_ms = store.client.pttl(store.redis_key(A))
    assert 0 < ttl_ms <= 3_600_000
    assert store.reset(A, T0) is None and store.client.exists(store.redis_key(A)) == 0


def test_workers_share_one_breaker_and_exactly_one_concurrent_admit_gets_the_probe(prefix):
    workers = [RedisBreakerStore(REDIS_URL, prefix) for _ in range(16)]
    try:
        for i in range(5):
            workers[i].record(A, False, T0)
        assert not workers[15].peek(A, T0 + 1).allowed
        barrier = threading.Barrier(len(workers))
        answers: list[Admission] = []

        def race(worker: RedisBreakerStore) -> None:
            barrier.wait()
            answers.append(worker.admit(A, T0 + 60))

        threads = [threading.Thread(target=race, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(a.allowed for a in answers) == 1
        assert sum(a.transition is not None for a in answers) == 1
    finally:
        for w in workers:
            w.close()


def test_an_unreachable_redis_falls_back_and_never_raises():
    seen: list[Transition] = []
    breakers = Breakers.with_redis("redis://127.0.0.1:1/0", on_transition=seen.append)
    assert breakers.admit(A).allowed
    assert breakers.fallback_active
    for _ in range(5):
        breakers.record(A, False)
    assert not breakers.admit(A).allowed and [t.to_state for t in seen] == [OPEN]
    with pytest.raises(BreakerStoreUnavailable):
        RedisBreakerStore("redis://127.0.0.1:1/0").admit(A, T0)


# --- the Lua script against the pure rules, on random sequences -------------------------

_key = st.sampled_from([A, A, A, B])  # mostly one key: long histories; B proves isolation
_op = st.one_of(
    st.tuples(st.sampled_from(["admit", "peek", "reset"]), _key,
              st.lists(st.just(True), min_size=1, max_size=3)),  # repeated: concurrent admits
    # Runs of outcomes reach both opening rules; "call" (admit, then record if admitted) is
    # how traffic and half-open probes really run.
    st.tuples(st.sampled_from(["record", "call"]), _key, st.lists(st.booleans(), min_size=1,
                                                                   max_size=12)),
    # Advances as fractions of the policy's periods: exact boundaries (1.0 x open_s lands on
    # the half-open instant, 1.0 x bucket_s on a bucket edge) and arbitrary floats.
    st.tuples(st.just("advance"), st.sampled_from(["open_s", "bucket_s", "window_s"]),
              st.sampled_from([0.5, 0.999, 1.0, 1.001, 2.0])),
    st.tuples(st.just("advance"), st.just("seconds"), st.floats(0, 75, allow_nan=False)),
    # Jump to the exact instant a refusal named (half-open time, probe lease end), then run
    # mostly successful calls: the half-open probes, their lease and the way back to closed.
    st.tuples(st.just("probe"), _key, st.lists(st.sampled_from([True, True, True, False]),
                                               max_size=4)))
_counter = itertools.count()


def _step(store, op: str, key: str, ok: bool, now: float) -> list:
    if op in ("admit", "peek"):
        return [getattr(store, op)(key, now)]
    if op == "reset":
        return [store.reset(key, now)]
    if op == "record":
        return [store.record(key, ok, now)]
    admission = store.admit(key, now)
    return [admission, store.record(key, ok, now) if admission.allowed else None]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(policy=st.sampled_from([BreakerPolicy(idle_ttl_s=LONG_TTL), TIGHT]),
       start=st.floats(0, 100, allow_nan=False), ops=st.lists(_op, max_size=40))
def test_redis_and_memory_stores_agree_on_every_answer(prefix, policy, start, ops):
    """Same answers (Admission, Transition) and, after every step, the same stored record
    field for field: buckets, counters, opened_at and the probe lease, floats exactly."""
    memory = MemoryBreakerStore(policy)
    shared = RedisBreakerStore(REDIS_URL, f"{prefix}:{next(_counter)}", policy)
    now = T0 + start
    try:
        for op, a, b in ops:
            if op == "advance":
                now += b if a == "seconds" else b * getattr(policy, a)
                continue
            if op == "probe":
                now = memory.peek(a, now).retry_at or now
                op = "call"
            for ok in b:
                expected = _step(memory, op, a, ok, now)
                assert _step(shared, op, a, ok, now) == expected, (op, a, ok, now)
                assert shared.state(a) == memory.state(a, now), (op, a, ok, now)
        assert shared.views(now) == memory.views(now)
    finally:
        shared.close()

