"""Append-only events tables (spec 11.1): triggers that make UPDATE, DELETE and TRUNCATE fail.

eventsourcing creates the four events tables when the applications open, after the
migrations ran, so the triggers cannot live in a migration file: the Gateway installs them
right after opening the stores. Installing is idempotent and cheap when they exist.
"""

from __future__ import annotations

from typing import Any

SQLITE_MESSAGE = "gatewayz: events are append-only"
# Several processes may start at once over one schema: a transaction-level advisory lock
# makes them install one after the other instead of racing on pg_trigger.
PG_LOCK_KEY = "gatewayz_events_append_only"


def install_append_only(apps: dict[str, Any]) -> list[str]:
    """Protect the events table of every application given; returns the tables protected.

    In-memory (POPO) recorders have no table and are skipped.
    """
    protected = []
    for app in apps.values():
        recorder = app.recorder
        table = getattr(recorder, "events_table_name", None)
        datastore = getattr(recorder, "datastore", None)
        if table is None or datastore is None:
            continue
        kind = type(datastore).__name__
        if kind == "SQLiteDatastore":
            _install_sqlite(datastore, table)
        elif kind == "PostgresDatastore":
            _install_postgres(datastore, table)
        else:
            continue
        protected.append(table)
    return protected


def _install_sqlite(datastore: Any, table: str) -> None:
    # SQLite has no TRUNCATE: its "truncate optimisation" of an unqualified DELETE is
    # disabled by any DELETE trigger, so the trigger below covers it too.
    with datastore.transaction(commit=True) as cur:
        for operation in ("UPDATE", "DELETE"):
            cur.execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} "
                f"BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{SQLITE_MESSAGE}'); END")


def _install_postgres(datastore: Any, table: str) -> None:
    from psycopg.sql import SQL, Identifier, Literal

    schema = datastore.schema
    triggers = {
        f"{table}_append_only": SQL(
            "CREATE OR REPLACE TRIGGER {name} BEFORE UPDATE OR DELETE ON {schema}.{table} "
            "FOR EACH ROW EXECUTE FUNCTION {schema}.gatewayz_append_only()"),
        f"{table}_no_truncate": SQL(
            "CREATE OR REPLACE TRIGGER {name} BEFORE TRUNCATE ON {schema}.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.gatewayz_append_only()"),
    }
    with datastore.transaction(commit=True) as cur:
        cur.execute(SQL("SELECT pg_advisory_xact_lock(hashtext({key}))").format(
            key=Literal(PG_LOCK_KEY)))
        cur.execute(SQL("SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = {schema} AND c.relname = {table}").format(
            schema=Literal(schema), table=Literal(table)))
        present = {row["tgname"] for row in cur.fetchall()}
        for name, statement in triggers.items():
            # Only when missing: CREATE OR REPLACE TRIGGER takes a lock that waits for
            # writers in other processes, which a restart should not do every time.
            if name not in present:
                cur.execute(statement.format(name=Identifier(name), schema=Identifier(schema),
                                             table=Identifier(table)))
