"""Applies the SQL files of ``migrations/`` once each, in name order, idempotently."""

from __future__ import annotations

from importlib import resources

from adapters.persistence.database import PostgresDatabase, SqliteDatabase

TRACKING_DDL = "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY)"


DIALECTS = ("postgres", "sqlite")
SEPARATOR = "-- statement"


def migration_files(dialect: str | None = None) -> list[tuple[str, str]]:
    """Portable ``NNN_name.sql`` files, plus ``NNN_name.<dialect>.sql`` ones for ``dialect``
    (triggers and functions have no portable spelling)."""
    root = resources.files("migrations")
    files = []
    for path in sorted(p for p in root.iterdir() if p.name.endswith(".sql")):
        only = path.name.rsplit(".", 2)[-2] if path.name.count(".") >= 2 else None
        if only in DIALECTS and only != dialect:
            continue
        files.append((path.name, path.read_text(encoding="utf-8")))
    return files


def statements(sql: str) -> list[str]:
    """Statements split on ``;``, or on ``-- statement`` lines when a file has them (bodies
    of triggers and functions contain semicolons)."""
    if SEPARATOR in sql:
        parts = sql.split(SEPARATOR)
    else:
        lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
        parts = "\n".join(lines).split(";")
    cleaned = ["\n".join(line for line in part.splitlines()
                         if not line.strip().startswith("--")).strip() for part in parts]
    return [part for part in cleaned if part]


def migrate(db: SqliteDatabase | PostgresDatabase) -> list[str]:
    """Apply every migration not applied yet; returns the names applied now."""
    applied_now = []
    with db.transaction() as cur:
        if db.dialect == "postgres":
            # Two processes starting together must not both apply a file.
            cur.execute("SELECT pg_advisory_xact_lock(727274)")
        cur.execute(TRACKING_DDL)
        cur.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in cur.fetchall()}
        for name, sql in migration_files(db.dialect):
            if name in done:
                continue
            for statement in statements(sql):
                cur.execute(statement)
            cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (name,))
            applied_now.append(name)
    return applied_now


def projection_tables() -> list[str]:
    """Tables created by the read-model migration, in file order."""
    name, sql = migration_files()[0]
    tables = []
    for statement in statements(sql):
        words = statement.split()
        if words[:2] == ["CREATE", "TABLE"]:
            tables.append(words[5] if words[2:5] == ["IF", "NOT", "EXISTS"] else words[2])
    return tables
