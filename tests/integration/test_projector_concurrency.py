"""Projectors racing each other apply every position exactly once (11.2, 11.5).

Several `gatewayz serve` workers each run a projector over the same read models, so two
projectors must never both apply one batch: the result of any race equals a clean rebuild.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from conftest import POSTGRES_URL, _create_schema, _drop_schema

from adapters.persistence.database import open_database
from adapters.persistence.migrate import migrate, projection_tables
from adapters.persistence.store_config import StoreConfig
from integration.support import place_hold, quiet_gateway, settle
from projections.runner import Projector
from projections.verify import digest, dump, verify


def workload(gateway, accounts: int = 4, holds: int = 30) -> None:
    for n in range(accounts):
        account_id = gateway.accounts.open_account(f"race{n}@example.com", "trial",
                                                   "staff:test")
        gateway.accounts.grant_credits(account_id, 50_000_000, "projector race credit",
                                       f"usr_{n}")
        for h in range(holds):
            aggregate, _ = place_hold(gateway, account_id, 100_000 + h)
            if h % 3:
                settle(gateway, aggregate, 1_000 * h)
        gateway.access.issue_key(account_id, "race", "live", None, None, "staff:test")


def tables(db) -> dict[str, str]:
    with db.transaction() as cur:
        return {table: digest(dump(cur, table)) for table in projection_tables()}


def scratch_database(backend: str, directory: Path):
    if backend == "postgres":
        schema = f"t_{uuid.uuid4().hex[:12]}"
        _create_schema(schema)
        db = open_database(StoreConfig.from_url(POSTGRES_URL, schema))
        return db, lambda: (db.close(), _drop_schema(schema))
    db = open_database(StoreConfig.sqlite(str(directory / "scratch.sqlite")))
    return db, db.close


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_four_projectors_starting_together_from_zero_equal_one_clean_projection(
        backend, tmp_path):
    with quiet_gateway(backend, tmp_path / "gw") as gateway:
        workload(gateway)
        gateway.projector.run_until_idle()
        expected = tables(gateway.db)
        db, close = scratch_database(backend, tmp_path)
        try:
            migrate(db)
            barrier = threading.Barrier(4)
            errors: list[BaseException] = []

            def run() -> None:
                barrier.wait()
                try:
                    Projector(gateway.stores, db).run_until_idle()
                except BaseException as error:  # reported below, with the table diff
                    errors.append(error)

            threads = [threading.Thread(target=run) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)

            assert errors == []
            raced = tables(db)
        finally:
            close()
    assert [t for t in expected if expected[t] != raced[t]] == []


def test_a_second_projector_running_beside_the_live_one_changes_nothing(gateway):
    second = Projector(gateway.stores, gateway.db)
    stop = threading.Event()

    def keep_projecting() -> None:
        while not stop.is_set():
            second.run_until_idle()

    thread = threading.Thread(target=keep_projecting)
    thread.start()
    try:
        workload(gateway, accounts=2, holds=20)
    finally:
        stop.set()
        thread.join(timeout=30)
    for context, position in gateway.stores.max_positions().items():
        assert gateway.projector.wait_for(context, position, timeout=10)

    reports = verify(gateway.config, gateway.stores, gateway.db)

    assert [(r.table, r.first_difference) for r in reports if not r.match] == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_what_another_process_projected_still_refreshes_this_ones_catalog(backend, tmp_path):
    """Cluster shape: a separate `gatewayz projector` may apply the catalog events a serving
    worker wrote before the worker's own pass does; the worker notices the foreign progress
    and refreshes its cached catalog anyway (else a new provider stays unknown to it)."""
    from application.catalog import CatalogService

    with quiet_gateway(backend, tmp_path / "data") as gw:
        writer = CatalogService(gw.stores, gw.vault, gw.clock, lambda *_: True)
        writer.register_provider({"slug": "late", "base_url": "http://127.0.0.1:9/v1",
                                  "allow_private": True, "credential": "sk-late"},
                                 "staff:test")
        Projector(gw.stores, gw.db).run_until_idle()  # the other process
        assert gw.catalog_view.provider("late") is None

        gw.projector.run_until_idle()

        assert gw.catalog_view.provider("late") is not None
