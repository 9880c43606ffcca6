"""Projection speed: events applied per second when rebuilding read models from position 0.

Writes N inference requests (hold placed + settled, 2 events each) for a few accounts
straight through the requests application, then times one projector catching up from 0,
on SQLite (embedded) and PostgreSQL. bench/rebuild.py measures the replay itself
(``project_into``) over a larger, mixed store.

    python bench/replay.py [--requests 10000] [--only sqlite|postgres]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain import pools  # noqa: E402
from domain.inference_request import InferenceRequest  # noqa: E402
from entrypoints.bootstrap import Gateway, Settings  # noqa: E402
from projections.rebuild import TABLES  # noqa: E402

PG_URL = os.environ.get("GATEWAYZ_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def workload(gateway: Gateway, requests: int) -> None:
    accounts = [gateway.accounts.open_account(f"r{i}@example.com", "dev", "system:bench")
                for i in range(4)]
    batch = []
    for i in range(requests):
        account = accounts[i % len(accounts)]
        aggregate = InferenceRequest(
            request_id=f"req_{uuid.uuid4().hex}", account_id=account, key_id="key_bench",
            endpoint="chat.completions", requested_model="bench/m", candidate_models=[],
            price_snapshot={}, estimated_input_tokens=10, output_limit=16, hold_micros=0,
            reserved_by_pool=pools.empty(), stream=False)
        aggregate.settle(provider="mock", served_model="bench/m", attempts=[], tokens={},
                         token_source="provider", cost_micros=0,
                         charged_by_pool=pools.empty(), finish_reason="stop", ttfb_ms=1,
                         duration_ms=1, client_disconnected=False)
        batch.append(aggregate)
        if len(batch) == 500:
            gateway.stores.requests.save(*batch)
            batch = []
    if batch:
        gateway.stores.requests.save(*batch)


def measure(kind: str, requests: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="gatewayz-replay-"))
    extra: dict = {}
    schema = None
    if kind == "postgres":
        import psycopg

        schema = f"replay_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        extra = {"database_url": PG_URL, "schema": schema}
    gateway = Gateway(Settings(data_dir=data_dir, key_pepper=b"p" * 32, master_key=bytes(32),
                               run_projector=False, **extra))
    try:
        workload(gateway, requests)
        with gateway.db.transaction() as cur:
            # Every rebuildable read model from position 0; the audit trail (append-only,
            # and this workload's free requests never enter it) keeps its place.
            cur.execute("DELETE FROM projection_tracking WHERE projection <> 'audit_trail'")
            for table in ["stream_index", *(t for ts in TABLES.values() for t in ts)]:
                cur.execute(f"DELETE FROM {table}")
        started = time.perf_counter()
        applied = gateway.projector.run_until_idle()
        elapsed = time.perf_counter() - started
        print(f"{kind:9} {applied:>7} events in {elapsed:6.2f} s = {applied / elapsed:8.0f} "
              "events/s")
    finally:
        gateway.close()
        if schema:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    for kind in ("sqlite", "postgres"):
        if args.only in (None, kind):
            measure(kind, args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
