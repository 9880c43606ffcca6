"""Issue 10's proof: 10,000 events reach Kafka complete and in order while the relay is
SIGKILLed five times (spec 11.11 acceptance, scaled to this machine)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

from conftest import PEPPER, POSTGRES_URL, make_settings
from kafka_support import Record, by_event, read_topics

from domain.catalog import Provider
from domain.wallet import Wallet
from entrypoints.relay import RelayStores

REPO = Path(__file__).resolve().parents[2]
STREAMS_PER_CONTEXT = 250  # wallets in `accounts`, providers in `catalog`: 500 aggregates
EVENTS_PER_STREAM = 20
ROUNDS, PER_ROUND, CHUNK = 5, 4, 50  # each save: 50 aggregates x 4 events = 200 events
TOTAL = 2 * STREAMS_PER_CONTEXT * EVENTS_PER_STREAM
KILLS = 5


def saves(opened: RelayStores) -> Iterator[Callable[[], None]]:
    """The 50 saves that write every event, in order; each is one transaction."""
    wallets: list[Wallet | None] = [None] * STREAMS_PER_CONTEXT
    providers: list[Provider | None] = [None] * STREAMS_PER_CONTEXT

    def wallet(i: int) -> Wallet:
        w, more = wallets[i], PER_ROUND
        if w is None:
            w, more = Wallet(account_id=f"acct_kafka_{i:04d}"), PER_ROUND - 1  # + Opened
            wallets[i] = w
        for _ in range(more):
            w.forfeit_trial(1, "ended")
        return w

    def provider(i: int) -> Provider:
        p, more = providers[i], PER_ROUND
        if p is None:
            p, more = Provider(
                slug=f"kafka-{i:04d}", name=f"Kafka {i}", protocol="openai",
                base_url="https://example.invalid/v1", allow_private=False, enabled=True,
                priority=0, timeout_ms=1000, credential_last4="", actor="system:test",
            ), PER_ROUND - 1
            providers[i] = p
        for _ in range(more):
            if p.enabled:
                p.disable("maintenance", "system:test")
            else:
                p.enable("system:test")
        return p

    for _ in range(ROUNDS):
        for start in range(0, STREAMS_PER_CONTEXT, CHUNK):
            for app, make in ((opened.stores.accounts, wallet),
                              (opened.stores.catalog, provider)):
                def save(app=app, make=make, start=start) -> None:
                    app.save(*[make(i) for i in range(start, start + CHUNK)])
                yield save


def relay_env(schema: str, broker: str, prefix: str, data_dir: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": POSTGRES_URL, "GATEWAYZ_DB_SCHEMA": schema,
            "GATEWAYZ_KEY_PEPPER": PEPPER.decode(), "GATEWAYZ_MASTER_KEY": bytes(range(32)).hex(),
            "KAFKA_BOOTSTRAP_SERVERS": broker, "GATEWAYZ_KAFKA_TOPIC_PREFIX": prefix,
            "GATEWAYZ_DATA_DIR": str(data_dir)}


def published(opened: RelayStores) -> int:
    """Events the relay has committed as published (positions are gap-free per context)."""
    with opened.db.transaction() as cur:
        cur.execute("SELECT COALESCE(SUM(position), 0) FROM relay_positions")
        return int(cur.fetchone()[0])


def wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; relay log:\n"
                                 f"{log.read_text()[-3000:]}")
        time.sleep(0.05)


def check_order(records: list[Record]) -> None:
    """Per stream, in delivery order: never a version beyond the next one (re-sends go back,
    nothing skips ahead), so the first delivery of each event is in version order."""
    highest: dict[str, int] = defaultdict(int)
    for r in records:
        stream, version = r.value["stream_id"], r.value["version"]
        assert r.key == stream.encode()
        assert r.headers["event_id"] == r.event_id.encode()
        assert version <= highest[stream] + 1, f"{stream} jumped to {version}"
        highest[stream] = max(highest[stream], version)
    first: dict[str, list[int]] = defaultdict(list)
    for r in by_event(records).values():
        first[r.value["stream_id"]].append(r.value["version"])
    assert len(first) == 2 * STREAMS_PER_CONTEXT
    assert all(v == list(range(1, EVENTS_PER_STREAM + 1)) for v in first.values())


def test_ten_thousand_events_survive_five_sigkills_of_the_relay(kafka_broker, pg_schema,
                                                               tmp_path):
    started = time.monotonic()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    # Events are written straight to the stores: fast, and no projector competing for CPU.
    opened = RelayStores(make_settings("postgres", tmp_path / "data", schema=pg_schema))
    env = relay_env(pg_schema, kafka_broker, prefix, tmp_path / "relay")
    log = tmp_path / "relay.log"
    rng = random.Random(11)

    def start_relay() -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "relay"],
                                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)

    writes = saves(opened)
    kills_at: list[int] = []
    try:
        # Each life of the relay: events keep arriving while it starts; once it has
        # committed a batch of them it is killed at a random moment, likely mid-batch.
        for _ in range(KILLS):
            relay = start_relay()
            before = published(opened)
            for _ in range(8):
                next(writes)()
                time.sleep(0.05)
            wait_for(lambda b=before: published(opened) > b, 30, "progress", log)
            time.sleep(rng.uniform(0, 0.2))
            relay.send_signal(signal.SIGKILL)
            relay.wait(timeout=10)
            kills_at.append(published(opened))
        relay = start_relay()
        for save in writes:  # the last 2,000 events, written after the fifth kill
            save()
        wait_for(lambda: published(opened) == TOTAL, 60, "the last commit", log)
        records = read_topics(kafka_broker, [f"{prefix}.ledger", f"{prefix}.catalog"],
                              expect_unique=TOTAL, timeout=45)
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=20) == 0  # a clean stop on SIGTERM
    finally:
        if relay.poll() is None:
            relay.kill()
        opened.close()

    unique = by_event(records)
    assert len(unique) == TOTAL
    assert {r.value["context"] for r in unique.values()} == {"accounts", "catalog"}
    check_order(records)
    assert len(kills_at) == KILLS and all(n < TOTAL for n in kills_at)
    elapsed = time.monotonic() - started
    print(f"\n{TOTAL} events, {len(records) - TOTAL} duplicates after {KILLS} SIGKILLs "
          f"(committed at kills: {kills_at}), {elapsed:.1f} s")
    assert elapsed < 90
