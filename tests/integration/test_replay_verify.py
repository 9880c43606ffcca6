"""Replay verification (11.9): a rebuild matches the live read models; a corruption is named."""

from __future__ import annotations

import time

import pytest
from conftest import make_settings

from entrypoints import cli
from entrypoints.bootstrap import Gateway
from integration.support import place_hold, settle
from projections.verify import verify


@pytest.fixture(autouse=True)
def embedded_environment(monkeypatch):
    """The CLI reads its settings from the environment: make it the embedded default."""
    for name in ("DATABASE_URL", "REDIS_URL", "GATEWAYZ_KEY_PEPPER", "GATEWAYZ_MASTER_KEY",
                 "GATEWAYZ_DATA_DIR", "GATEWAYZ_DB_SCHEMA"):
        monkeypatch.delenv(name, raising=False)


def mixed_workload(gateway, accounts: int = 3) -> list[str]:
    ids = []
    for n in range(accounts):
        account_id = gateway.accounts.open_account(f"replay{n}@example.com",
                                                   "trial" if n % 2 else "dev", "staff:test")
        gateway.accounts.grant_credits(account_id, 2_000_000 + n, "replay workload grant",
                                       f"usr_admin{n}")
        gateway.accounts.credit_purchase(account_id, f"pi_{n}", 100 + n, "starter", "stripe")
        gateway.accounts.reset_allowance(account_id, "team", f"in_{n}", 1_000_000, 0)
        issued = gateway.access.issue_key(account_id, "replay", "live", None, None,
                                          "staff:test")
        gateway.access.rotate_key(issued.key_id, 60, "staff:test")
        for cost in (0, 1, 999, 5_000_000):
            aggregate, _ = place_hold(gateway, account_id, 50_000)
            settle(gateway, aggregate, cost)
        voided, _ = place_hold(gateway, account_id, 20_000)
        voided.void("timeout", [], "no answer")
        gateway.stores.requests.save(voided)
        place_hold(gateway, account_id, 30_000)  # left open
        ids.append(account_id)
    gateway.catalog.register_provider({"slug": "fakeup", "base_url": "http://127.0.0.1:9/v1",
                                       "allow_private": True}, "staff:test")
    gateway.catalog.set_prices("acme/chat-1", {"provider": "fakeup",
                                               "prices": {"input": "1", "output": "2"}, "context_length": 128_000},
                               "staff:test")
    gateway.access.bootstrap_owner("owner@example.com")
    return ids


def caught_up(gateway) -> None:
    """Wait until the running projector has applied everything recorded so far."""
    for context, position in gateway.stores.max_positions().items():
        assert gateway.projector.wait_for(context, position, timeout=10)


def corrupt_one_balance(db, account_id: str) -> None:
    with db.transaction() as cur:
        cur.execute("UPDATE balances SET purchased = purchased + 1 WHERE account_id = %s",
                    (account_id,))


def test_a_replay_after_a_mixed_workload_matches_every_read_model(gateway):
    mixed_workload(gateway)
    caught_up(gateway)

    reports = verify(gateway.config, gateway.stores, gateway.db)

    assert {r.table for r in reports} >= {"balances", "holds", "ledger_lines", "requests",
                                          "api_keys", "key_secrets", "accounts"}
    assert [(r.table, r.first_difference) for r in reports if not r.match] == []
    by_table = {r.table: r for r in reports}
    assert by_table["balances"].live_rows == 3
    assert by_table["requests"].live_rows == 18
    assert all(r.live_rows == r.rebuilt_rows for r in reports)


def test_a_corrupted_balance_row_is_reported_with_its_table_and_row(gateway):
    accounts = mixed_workload(gateway)
    caught_up(gateway)
    corrupt_one_balance(gateway.db, accounts[1])

    reports = verify(gateway.config, gateway.stores, gateway.db)

    different = [r for r in reports if not r.match]
    assert [r.table for r in different] == ["balances"]
    assert accounts[1] in different[0].first_difference
    assert different[0].live_hash != different[0].rebuilt_hash
    assert different[0].live_rows == different[0].rebuilt_rows == 3


def test_verify_does_not_change_the_live_read_models(gateway):
    accounts = mixed_workload(gateway, accounts=1)
    caught_up(gateway)
    before = gateway.balances.balance(accounts[0], int(time.time()))
    corrupt_one_balance(gateway.db, accounts[0])

    verify(gateway.config, gateway.stores, gateway.db)

    with gateway.db.transaction() as cur:
        cur.execute("SELECT purchased FROM balances WHERE account_id = %s", (accounts[0],))
        purchased = cur.fetchone()[0]
    assert purchased == before["pools"]["purchased"]["balance_micros"] + 1


def test_the_replay_command_exits_zero_when_all_match_and_one_after_a_corruption(
        tmp_path, capsys):
    data_dir = tmp_path / "embedded"
    gateway = Gateway(make_settings("sqlite", data_dir))
    gateway.start()
    accounts = mixed_workload(gateway)
    caught_up(gateway)
    gateway.close()
    assert (data_dir / "gatewayz.sqlite").exists()

    assert cli.main(["replay", "--verify", "--data-dir", str(data_dir)]) == 0
    assert "all read models match" in capsys.readouterr().out

    gateway = Gateway(make_settings("sqlite", data_dir))
    corrupt_one_balance(gateway.db, accounts[2])
    gateway.close()

    assert cli.main(["replay", "--verify", "--data-dir", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert "balances" in out and "DIFFERENT" in out
    assert accounts[2] in out


def test_an_allowance_renewal_after_a_charge_rebuilds_to_the_same_balance_as_live(gateway):
    account_id = gateway.accounts.open_account("renewal@example.com", "team", "staff:test")
    gateway.accounts.reset_allowance(account_id, "team", "in_1", 1_000_000, 0)
    aggregate, outcome = place_hold(gateway, account_id, 500_000)
    assert outcome.reserved_by_pool["allowance"] == 500_000
    settle(gateway, aggregate, 300_000)
    caught_up(gateway)
    gateway.accounts.reset_allowance(account_id, "team", "in_2", 1_000_000, 700_000)
    caught_up(gateway)

    view = gateway.balances.balance(account_id, int(time.time()))
    assert view["pools"]["allowance"]["balance_micros"] == 1_000_000  # the plan amount (6.3)
    reports = verify(gateway.config, gateway.stores, gateway.db)
    assert [(r.table, r.first_difference) for r in reports if not r.match] == []
