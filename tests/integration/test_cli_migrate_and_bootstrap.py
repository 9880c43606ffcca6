"""`gatewayz migrate` and `gatewayz admin bootstrap`: safe to run twice (10.x, 1.5)."""

from __future__ import annotations

import pytest
from conftest import POSTGRES_URL

from adapters.persistence.database import open_database
from adapters.persistence.migrate import migrate, migration_files, projection_tables
from adapters.persistence.store_config import StoreConfig
from entrypoints import cli
from entrypoints.bootstrap import Gateway, Settings
from integration.support import raw_events


@pytest.fixture(autouse=True)
def embedded_environment(monkeypatch):
    """The CLI reads its settings from the environment: make it the embedded default."""
    for name in ("DATABASE_URL", "REDIS_URL", "GATEWAYZ_KEY_PEPPER", "GATEWAYZ_MASTER_KEY",
                 "GATEWAYZ_DATA_DIR", "GATEWAYZ_DB_SCHEMA"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["sqlite", "postgres"])
def read_model_db(request, tmp_path):
    if request.param == "sqlite":
        db = open_database(StoreConfig.sqlite(str(tmp_path / "read-models.sqlite")))
    else:
        schema = request.getfixturevalue("pg_schema")
        db = open_database(StoreConfig.from_url(POSTGRES_URL, schema))
    yield db
    db.close()


def schema_of(db) -> list[tuple]:
    with db.transaction() as cur:
        if db.dialect == "sqlite":
            cur.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        else:
            cur.execute("SELECT table_name, column_name, data_type FROM "
                        "information_schema.columns WHERE table_schema = current_schema() "
                        "ORDER BY table_name, column_name")
        return cur.fetchall()


def test_migrate_applies_every_file_once_and_a_second_run_changes_nothing(read_model_db):
    first = migrate(read_model_db)
    shape = schema_of(read_model_db)
    with read_model_db.transaction() as cur:
        cur.execute("INSERT INTO accounts (account_id, plan, origin, opened_at) "
                    "VALUES ('acct_kept', 'dev', 'admin', '2030-01-01T00:00:00.000000Z')")

    second = migrate(read_model_db)

    assert first == [name for name, _ in migration_files(read_model_db.dialect)]
    assert second == []
    assert schema_of(read_model_db) == shape
    with read_model_db.transaction() as cur:
        cur.execute("SELECT COUNT(*) FROM accounts")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT COUNT(*) FROM schema_migrations")
        assert cur.fetchone()[0] == len(first)
    assert "balances" in projection_tables() and "idempotency_records" not in \
        projection_tables()


def test_the_migrate_command_can_run_twice_on_one_data_directory(tmp_path, capsys):
    data_dir = tmp_path / "embedded"

    assert cli.main(["migrate", "--data-dir", str(data_dir)]) == 0
    assert cli.main(["migrate", "--data-dir", str(data_dir)]) == 0

    assert capsys.readouterr().out.count("read-model schema is up to date") == 2
    assert (data_dir / "gatewayz.sqlite").exists()


def access_events(data_dir) -> list:
    gateway = Gateway(Settings(data_dir=data_dir, run_projector=False))
    try:
        return raw_events(gateway.stores.access)
    finally:
        gateway.close()


def test_bootstrap_creates_one_owner_and_a_second_bootstrap_is_refused_without_an_event(
        tmp_path, capsys):
    data_dir = tmp_path / "embedded"

    assert cli.main(["admin", "bootstrap", "--data-dir", str(data_dir),
                     "--email", "first@example.com"]) == 0
    token = capsys.readouterr().out.strip()
    events = access_events(data_dir)

    assert cli.main(["admin", "bootstrap", "--data-dir", str(data_dir),
                     "--email", "second@example.com"]) != 0

    refused = capsys.readouterr()
    assert "owner already exists" in refused.err
    assert refused.out == ""
    assert [e.position for e in access_events(data_dir)] == [e.position for e in events]
    assert [e.type for e in events].count("OwnerBootstrap.Bootstrapped") == 1
    gateway = Gateway(Settings(data_dir=data_dir, run_projector=False))
    try:
        gateway.start()
        principal = gateway.access.authenticate_staff(token)
        assert principal.staff.role == "owner"
        assert principal.allows("owner")
    finally:
        gateway.close()
