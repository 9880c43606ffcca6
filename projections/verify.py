"""Replay verification (11.9): rebuild every read model into scratch tables and compare."""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from adapters.persistence.database import open_database
from adapters.persistence.migrate import migrate, projection_tables
from adapters.persistence.store_config import StoreConfig
from application.event_stores import EventStores
from projections.runner import Projector


@dataclass
class TableReport:
    table: str
    live_rows: int
    rebuilt_rows: int
    live_hash: str
    rebuilt_hash: str
    first_difference: str | None

    @property
    def match(self) -> bool:
        return self.live_hash == self.rebuilt_hash


def dump(cur: Any, table: str) -> list[str]:
    cur.execute(f"SELECT * FROM {table}")
    rows = [json.dumps([None if v is None else str(v) for v in row]) for row in cur.fetchall()]
    return sorted(rows)


def digest(rows: list[str]) -> str:
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def verify(config: StoreConfig, stores: EventStores, live_db: Any) -> list[TableReport]:
    """Compare the live read models with a rebuild up to the same positions.

    The live side is dumped in one transaction together with its tracking positions, and
    the rebuild stops at exactly those positions, so concurrent traffic cannot cause a
    false difference. Live tables are only read.
    """
    tables = projection_tables()
    with live_db.transaction() as cur:
        cur.execute("SELECT context, MIN(position) FROM projection_tracking GROUP BY context")
        limits = {context: int(position) for context, position in cur.fetchall()}
        live = {table: dump(cur, table) for table in tables}
    scratch_dir = tempfile.mkdtemp(prefix="gatewayz-replay-")
    if config.kind == "postgres":
        scratch_config = replace(config, schema=f"replay_verify_{Path(scratch_dir).name[-8:]}")
        _create_schema(live_db, scratch_config.schema)
    else:
        scratch_config = StoreConfig.sqlite(str(Path(scratch_dir) / "replay.sqlite"))
    scratch = open_database(scratch_config)
    try:
        migrate(scratch)
        Projector(stores, scratch).run_until_idle(
            limits={context: limits.get(context, 0) for context in stores.by_context()})
        with scratch.transaction() as cur:
            rebuilt = {table: dump(cur, table) for table in tables}
    finally:
        scratch.close()
        if config.kind == "postgres":
            _drop_schema(live_db, scratch_config.schema)
    reports = []
    for table in tables:
        a, b = live[table], rebuilt[table]
        difference = None
        if a != b:
            only_live = sorted(set(a) - set(b))
            only_rebuilt = sorted(set(b) - set(a))
            difference = (f"live has {only_live[0]}" if only_live
                          else f"rebuild has {only_rebuilt[0]}")
        reports.append(TableReport(table, len(a), len(b), digest(a), digest(b), difference))
    return reports


def _create_schema(db: Any, schema: str) -> None:
    with db.transaction() as cur:
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


def _drop_schema(db: Any, schema: str) -> None:
    with db.transaction() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
