"""``gatewayz replay``: rebuild read models into scratch tables, compare or switch (11.9).

A rebuild runs every projection from position 0 up to the live positions fixed at the
start into a scratch database (a schema on PostgreSQL, a file on SQLite). ``--verify``
compares (projections/verify.py); ``--rebuild`` copies the scratch rows over the live ones
in one transaction, tracking positions included, so readers see the old or the new model,
never a mix. The audit trail is never rebuilt in place: its chain is history, not a cache.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from adapters.persistence.database import open_database
from adapters.persistence.migrate import migrate
from adapters.persistence.store_config import StoreConfig
from projections.runner import Projector, all_projections

# The tables each rebuildable projection owns. stream_index is shared (every projection
# may index a stream) and deterministic, so it is replaced only with "all".
TABLES = {
    "accounts": ("accounts",), "balances": ("balances", "holds", "ledger_lines"),
    "usage": ("requests",), "access": ("api_keys", "key_secrets", "users", "staff_tokens",
                                           "gateway_config"),
    "catalog": ("providers", "model_prices", "catalog_models", "model_metadata",
                "model_aliases", "account_routes"),
    "catalog_sync": ("synced_models", "catalog_sync_status"),
    "incidents": ("incidents", "incident_notes", "incident_severity_history"),
    "security": ("security_events",),
    "as_of_clock": ("as_of_clock", "balance_flags"), "audit_keys": ("audit_signing_keys",),
    "journal": ("journal_postings", "journal_requests"),
}
NOT_REBUILT = ("audit_trail",)


@contextmanager
def scratch_database(config: StoreConfig, live_db: Any) -> Iterator[tuple[Any, str]]:
    """A migrated, empty copy of the read-model schema; yields (db, where)."""
    scratch_dir = tempfile.mkdtemp(prefix="gatewayz-replay-")
    if config.kind == "postgres":
        scratch_config = replace(config, schema=f"replay_{Path(scratch_dir).name[-8:]}")
        with live_db.transaction() as cur:
            cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{scratch_config.schema}"')
        where = scratch_config.schema
    else:
        scratch_config = StoreConfig.sqlite(str(Path(scratch_dir) / "replay.sqlite"))
        where = scratch_config.read_model_path
    scratch = open_database(scratch_config)
    try:
        migrate(scratch)
        yield scratch, where
    finally:
        scratch.close()
        shutil.rmtree(scratch_dir, ignore_errors=True)
        if config.kind == "postgres":
            with live_db.transaction() as cur:
                cur.execute(f'DROP SCHEMA IF EXISTS "{scratch_config.schema}" CASCADE')


def live_limits(live_db: Any) -> dict[str, int]:
    with live_db.transaction() as cur:
        cur.execute("SELECT context, MIN(position) FROM projection_tracking GROUP BY context")
        return {context: int(position) for context, position in cur.fetchall()}


def project_into(stores: Any, scratch: Any, limits: dict[str, int], names: list[str] | None,
                 progress: Callable[[int], None] | None = None) -> int:
    projections = [p for p in all_projections() if names is None or p.name in names]
    return Projector(stores, scratch, projections=projections).run_until_idle(
        limits={context: limits.get(context, 0) for context in stores.by_context()},
        progress=progress)


def rebuild(config: StoreConfig, stores: Any, live_db: Any, name: str,
            out: TextIO = sys.stderr) -> int:
    """Rebuild ``name`` (or ``all``) and switch it in atomically; returns events applied."""
    if name in NOT_REBUILT:
        raise ValueError(f"{name} is history, not a cache: it is verified, never rebuilt")
    names = sorted(TABLES) if name == "all" else [name]
    if any(n not in TABLES for n in names):
        raise ValueError(f"unknown projection {name!r}; one of: all, {', '.join(TABLES)}")
    tables = [t for n in names for t in TABLES[n]] + (["stream_index"] if name == "all" else [])
    limits = live_limits(live_db)
    total = sum(stores.max_positions().get(c, 0) for c in limits) or 1
    meter = Progress(total, out)
    with scratch_database(config, live_db) as (scratch, where):
        applied = project_into(stores, scratch, limits, names, meter.update)
        meter.done(applied)
        _switch(config, live_db, scratch, where, tables, names)
    return applied


def _switch(config: StoreConfig, live_db: Any, scratch: Any, where: str, tables: list[str],
            names: list[str]) -> None:
    marks = ", ".join(["%s"] * len(names))
    if config.kind == "postgres":
        with live_db.transaction() as cur:
            # The live projector takes these locks first in every batch: holding them, no
            # batch can interleave with the switch.
            for context in ("accounts", "access", "requests", "catalog"):
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || "
                            "':projector:' || %s))", (context,))
            for table in tables:
                cur.execute(f"DELETE FROM {table}")
                cur.execute(f'INSERT INTO {table} SELECT * FROM "{where}".{table}')
            cur.execute(f"DELETE FROM projection_tracking WHERE projection IN ({marks})", names)
            cur.execute("INSERT INTO projection_tracking SELECT * FROM "
                        f'"{where}".projection_tracking WHERE projection IN ({marks})', names)
        return
    conn = live_db._connection()  # ATTACH cannot run inside a transaction
    conn.execute("ATTACH DATABASE ? AS scratch", (where,))
    try:
        with live_db.transaction() as cur:
            for table in tables:
                cur.execute(f"DELETE FROM main.{table}")
                cur.execute(f"INSERT INTO main.{table} SELECT * FROM scratch.{table}")
            cur.execute(f"DELETE FROM main.projection_tracking WHERE projection IN ({marks})",
                        names)
            cur.execute("INSERT INTO main.projection_tracking SELECT * FROM "
                        f"scratch.projection_tracking WHERE projection IN ({marks})", names)
    finally:
        conn.execute("DETACH DATABASE scratch")


class Progress:
    """Rows, events/s and ETA: redrawn in place on a terminal, a plain line every 2 s else."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out = total, out
        self.started = self.last = time.monotonic()
        self.tty = out.isatty()

    def update(self, applied: int) -> None:
        now = time.monotonic()
        if not self.tty and now - self.last < 2.0:
            return
        self.last = now
        rate = applied / max(now - self.started, 1e-6)
        eta = max(self.total - applied, 0) / rate if rate else 0.0
        line = (f"replay: {applied:,}/{self.total:,} events  {rate:,.0f} events/s  "
                f"ETA {eta:,.0f} s")
        self.out.write(("\r" + line) if self.tty else line + "\n")
        self.out.flush()

    def done(self, applied: int) -> None:
        elapsed = time.monotonic() - self.started
        end = "\n" if self.tty else ""
        self.out.write(f"{end}replay: {applied:,} events in {elapsed:.1f} s "
                       f"({applied / max(elapsed, 1e-6):,.0f} events/s)\n")
        self.out.flush()
