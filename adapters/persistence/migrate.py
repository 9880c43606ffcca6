"""Applies the SQL files of ``migrations/`` once each, in name order, idempotently."""

from __future__ import annotations

from importlib import resources

from adapters.persistence.database import PostgresDatabase, SqliteDatabase

TRACKING_DDL = "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY)"


def migration_files() -> list[tuple[str, str]]:
    root = resources.files("migrations")
    files = sorted(p for p in root.iterdir() if p.name.endswith(".sql"))
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


def statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


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
        for name, sql in migration_files():
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
