"""What the read model knows about holds, read in one transaction with the pools it matches.

A read model may lag, so it is trusted only for positive facts: a hold it shows ended is
ended, and its pools already carry that hold's charge. "Not in the read model" means "not
projected yet", never "never happened"; the event store answers that (hold_reconciler).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from application.ports import BalanceSnapshot
from projections.balances import BalanceQueries


@dataclass
class AccountHoldFacts:
    snapshot: BalanceSnapshot | None  # pools at ``version``; None: account not projected yet
    open_holds: dict[str, dict[str, int]] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)  # among the hold ids asked about


@dataclass
class HoldFacts:
    version: int
    requests_position: int  # events of the requests context after this are not projected
    accounts: dict[str, AccountHoldFacts]


class HoldQueries:
    def __init__(self, db: Any) -> None:
        self.db = db

    def facts(self, asked: dict[str, set[str]]) -> HoldFacts:
        """For each account: pools, its open holds, and which of the asked hold ids ended."""
        with self.db.transaction() as cur:
            version = BalanceQueries.version(cur)
            cur.execute("SELECT position FROM projection_tracking "
                        "WHERE projection = 'balances' AND context = 'requests'")
            row = cur.fetchone()
            position = int(row[0]) if row else 0
            found: dict[str, AccountHoldFacts] = {}
            for account_id, hold_ids in asked.items():
                snapshot = BalanceQueries.snapshot(cur, account_id, version, with_holds=True)
                facts = AccountHoldFacts(snapshot)
                if snapshot is not None:
                    facts.open_holds = dict(snapshot.open_holds)
                for chunk in _chunks(sorted(hold_ids), 500):
                    marks = ", ".join(["%s"] * len(chunk))
                    cur.execute(f"SELECT request_id FROM holds WHERE request_id IN ({marks}) "
                                "AND ended_at IS NOT NULL", chunk)
                    facts.ended.update(r[0] for r in cur.fetchall())
                found[account_id] = facts
        return HoldFacts(version, position, found)

    def open_holds_by_worker(self) -> list[tuple[str, str]]:
        """(request id, worker id) of every projected open hold whose worker is recorded."""
        with self.db.transaction() as cur:
            cur.execute("SELECT request_id, worker_id FROM holds "
                        "WHERE ended_at IS NULL AND worker_id <> ''")
            return [(r[0], r[1]) for r in cur.fetchall()]

    def accounts_with_open_holds(self) -> list[str]:
        with self.db.transaction() as cur:
            cur.execute("SELECT DISTINCT account_id FROM holds WHERE ended_at IS NULL")
            return [r[0] for r in cur.fetchall()]


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
