"""``gatewayz replay --rebuild``: rebuild a read model and switch it in atomically (11.9)."""

from __future__ import annotations

import io

import pytest

from projections.rebuild import Progress, rebuild
from projections.verify import verify

DOLLAR = 1_000_000


def funded(gateway, n: int = 3) -> list[str]:
    accounts = []
    for i in range(n):
        account_id = gateway.accounts.open_account(f"r{i}@example.com", "dev", "staff:test")
        gateway.accounts.grant_credits(account_id, (i + 1) * DOLLAR, "replay rebuild grant",
                                       f"usr_r{i}")
        accounts.append(account_id)
    gateway.projector.run_until_idle()
    return accounts


def balance_of(gateway, account_id: str) -> int:
    with gateway.db.transaction() as cur:
        cur.execute("SELECT purchased FROM balances WHERE account_id = %s",
                    (account_id,))
        return int(cur.fetchone()[0])


@pytest.mark.parametrize("name", ["balances", "all"])
def test_a_corrupted_read_model_is_rebuilt_and_switched_in(gateway, name):
    accounts = funded(gateway)
    with gateway.db.transaction() as cur:
        cur.execute("UPDATE balances SET purchased = purchased + 7 "
                    "WHERE account_id = %s", (accounts[0],))
    assert not all(r.match for r in verify(gateway.config, gateway.stores, gateway.db))
    out = io.StringIO()

    applied = rebuild(gateway.config, gateway.stores, gateway.db, name, out)

    assert applied > 0 and "events/s" in out.getvalue()
    assert balance_of(gateway, accounts[0]) == DOLLAR
    assert all(r.match for r in verify(gateway.config, gateway.stores, gateway.db))
    more = gateway.accounts.open_account("after@example.com", "dev", "staff:test")
    gateway.accounts.grant_credits(more, DOLLAR, "after the rebuild", "usr_after")
    gateway.projector.run_until_idle()  # the live projector carries on from the switch
    assert balance_of(gateway, more) == DOLLAR
    assert all(r.match for r in verify(gateway.config, gateway.stores, gateway.db))


def test_the_audit_trail_and_unknown_names_are_refused(gateway):
    funded(gateway, 1)
    for name in ("audit_trail", "nonsense"):
        with pytest.raises(ValueError):
            rebuild(gateway.config, gateway.stores, gateway.db, name, io.StringIO())


def test_progress_prints_plain_lines_off_a_terminal():
    out = io.StringIO()
    meter = Progress(1000, out)
    meter.last -= 5
    meter.update(500)
    meter.done(1000)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("replay: 500/1,000 events") and "ETA" in lines[0]
    assert "\r" not in out.getvalue() and lines[-1].startswith("replay: 1,000 events in")
