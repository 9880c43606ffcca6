"""Rebuild speed (11.9): events/s of ``project_into`` (what ``replay --verify/--rebuild`` run).

Builds an event store of about N events through the eventsourcing applications (saved in
large batches, not through HTTP): accounts with wallet grants, then inference requests
(HoldPlaced, then HoldSettled with a charge or, one in ten, HoldVoided) spread over those
accounts. Then times ``projections.rebuild.project_into`` from position 0 into a scratch
schema (PostgreSQL) or file (SQLite), every projection (``--verify``'s set, audit trail
included) unless ``--rebuildable``.

    python bench/rebuild.py [--events 200000] [--backend postgres|sqlite] [--store NAME]
                            [--runs 1] [--profile FILE] [--rebuildable]

``--store NAME`` keeps the built store (PostgreSQL schema ``NAME``, SQLite directory
``/tmp/NAME``) and reuses it on the next run with the same name, so runs can alternate
without rebuilding the events.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GATEWAYZ_PG_POOL_SIZE", "1")
os.environ.setdefault("GATEWAYZ_PG_MAX_OVERFLOW", "2")

from adapters.persistence.database import open_database  # noqa: E402
from adapters.persistence.migrate import migrate  # noqa: E402
from adapters.persistence.store_config import StoreConfig  # noqa: E402
from application.event_stores import EventStores  # noqa: E402
from domain.account import Account  # noqa: E402
from domain.inference_request import InferenceRequest  # noqa: E402
from domain.wallet import Wallet  # noqa: E402
from projections.rebuild import TABLES, project_into, scratch_database  # noqa: E402

PG_URL = os.environ.get("GATEWAYZ_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SAVE_BATCH = 2_000  # aggregates per save: one transaction each
EVENTS_PER_ACCOUNT_SHARE = 1_000  # one account per this many events
GRANTS = 3


def build(stores: EventStores, events: int, seed: int = 7) -> int:
    """Save about ``events`` events; returns how many were saved."""
    rng = random.Random(seed)
    accounts = max(4, events // EVENTS_PER_ACCOUNT_SHARE)
    saved, batch = 0, []
    ids = [f"acct_bench{n:08d}" for n in range(accounts)]
    for n, account_id in enumerate(ids):
        plan = "trial" if n % 4 == 0 else "dev"
        account = Account(account_id=account_id, origin="admin", plan=plan,
                          email_enc=f"v2:{account_id}:bench", email_domain_hash="0" * 64,
                          actor="system:bench")
        wallet = Wallet(account_id=account_id)
        if plan == "trial":
            wallet.grant_trial(5_000_000, "2099-01-01T00:00:00+00:00")
        for g in range(GRANTS):
            wallet.grant(rng.randint(1, 1000) * 1_000_000, "bench grant of credit", "staff:usr_b",
                         f"grant-{account_id}-{g}")
        batch += [account, wallet]
        saved += 2 + GRANTS + (plan == "trial")
    _save(stores.accounts, batch)
    batch = []
    request = 0
    while saved < events:
        account_id = ids[request % accounts]
        hold = rng.randint(1_000, 50_000)
        trial = hold // 4 if (request % accounts) % 4 == 0 else 0
        reserved = {"trial": trial, "allowance": 0, "purchased": hold - trial}
        aggregate = InferenceRequest(
            request_id=f"req_{uuid.UUID(int=rng.getrandbits(128)).hex}", account_id=account_id,
            key_id="key_bench", endpoint="chat.completions", requested_model="bench/m",
            candidate_models=["bench/m"], price_snapshot={"input": 1, "output": 2},
            estimated_input_tokens=300, output_limit=1024, hold_micros=hold,
            reserved_by_pool=reserved, stream=bool(request % 2), worker_id="wrk_bench")
        if request % 10 == 9:
            aggregate.void("provider_error", [{"provider": "mock", "status": 502}])
        else:
            cost = rng.randint(1, hold)
            charged_trial = min(trial, cost)
            aggregate.settle(
                provider="mock", served_model="bench/m",
                attempts=[{"provider": "mock", "status": 200}],
                tokens={"prompt_tokens": 300, "completion_tokens": cost // 2},
                token_source="provider", cost_micros=cost,
                charged_by_pool={"trial": charged_trial, "allowance": 0,
                                 "purchased": cost - charged_trial},
                finish_reason="stop", ttfb_ms=120, duration_ms=900, client_disconnected=False)
        batch.append(aggregate)
        saved += 2
        request += 1
        if len(batch) >= SAVE_BATCH:
            _save(stores.requests, batch)
            batch = []
    _save(stores.requests, batch)
    return saved


def _save(app, batch: list) -> None:
    for start in range(0, len(batch), SAVE_BATCH):
        app.save(*batch[start:start + SAVE_BATCH])


def open_store(backend: str, name: str | None) -> tuple[StoreConfig, object, EventStores, bool]:
    """(config, live db, stores, whether the store already holds events)."""
    name = name or f"rebuild_{uuid.uuid4().hex[:8]}"
    if backend == "postgres":
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
        config = StoreConfig.from_url(PG_URL, name)
    else:
        directory = Path(tempfile.gettempdir()) / name
        directory.mkdir(exist_ok=True)
        config = StoreConfig.sqlite(str(directory / "gatewayz.sqlite"))
    live = open_database(config)
    migrate(live)
    stores = EventStores(config.app_env)
    return config, live, stores, sum(stores.max_positions().values()) > 0


def drop_store(backend: str, config: StoreConfig) -> None:
    if backend == "postgres":
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{config.schema}" CASCADE')
    else:
        import shutil

        shutil.rmtree(Path(config.sqlite_path).parent, ignore_errors=True)


def time_rebuild(config, live, stores, names,
                 profile: str | None) -> tuple[int, float, float]:
    """(events applied, wall seconds, this process's CPU seconds)."""
    limits = stores.max_positions()
    with scratch_database(config, live) as (scratch, _):
        profiler = cProfile.Profile() if profile else None
        started, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        applied = project_into(stores, scratch, limits, names)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    return applied, elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--store", help="keep (or reuse) the built store under this name")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--profile", help="write a cProfile of the (last) rebuild here")
    parser.add_argument("--rebuildable", action="store_true",
                        help="only the projections --rebuild all runs (no audit trail)")
    args = parser.parse_args()
    config, live, stores, existing = open_store(args.backend, args.store)
    try:
        if existing:
            events = sum(stores.max_positions().values())
            print(f"{args.backend}: reusing {events:,} events", flush=True)
        else:
            started = time.perf_counter()
            events = build(stores, args.events)
            print(f"{args.backend}: built {events:,} events in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
        names = sorted(TABLES) if args.rebuildable else None
        for run in range(args.runs):
            last = run == args.runs - 1
            applied, elapsed, cpu = time_rebuild(config, live, stores, names,
                                                 args.profile if last else None)
            print(f"{args.backend:8} rebuild {applied:>9,} events in {elapsed:7.2f} s = "
                  f"{applied / elapsed:8,.0f} events/s (projector CPU {cpu:.2f} s = "
                  f"{applied / cpu:,.0f} events per CPU-second)", flush=True)
    finally:
        stores.close()
        live.close()
        if not args.store:
            drop_store(args.backend, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
