"""Reads of the journal: trial balance and customer liabilities, live or as of a point (11.5).

As of a point, only postings whose (context, position) is at or before it count (the same
filter as balances and statements, projections/as_of.py), so an answer for a point never
changes. Each report is one SELECT, so even a live answer reads one consistent state.

Liabilities by source. A charge records the pools it drew from, not which credit inside a
pool it used, and the purchased pool mixes paid and promotional credit. Attributing charges
at projection time would depend on the order in which the accounts and requests contexts
were applied, which a rebuild does not reproduce. So the split is computed at query time
from each account's totals at the point: within a pool, promotional credit is deemed spent
first and paid credit last (SPEND_ORDER). That keeps the cash-backed liability, the part a
refund or dispute can claw back, at its largest (prudence), and it is a function of the
postings up to the point alone. By pool the figures are exact; by source they add up to the
same total.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from projections.as_of import AsOf
from projections.journal import CHART, CUSTOMER

# The source of the credit each credit-posting kind brings into a customer pool.
SOURCE_OF_KIND = {"trial_credit": "trial_credit", "allowance_reset": "subscription",
                  "admin_grant": "admin_grant", "purchase": "payment"}
# Per pool, the order in which its credit is deemed spent; the last source also carries
# whatever the others cannot (a charge seen before its credit at a mixed as-of point).
SPEND_ORDER = {"customer:trial": ("trial_credit",),
               "customer:allowance": ("subscription",),
               "customer:purchased": ("admin_grant", "payment")}
SOURCES = ("trial_credit", "subscription", "admin_grant", "payment")


class JournalQueries:
    def __init__(self, db: Any) -> None:
        self.db = db

    def trial_balance(self, at: AsOf | None = None) -> dict[str, Any]:
        """Debits, credits and balance per ledger account; the balances sum to zero."""
        where, params = _point(at)
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT ledger_account, "
                "COALESCE(SUM(CASE WHEN amount_micros > 0 THEN amount_micros ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN amount_micros < 0 THEN -amount_micros ELSE 0 END), 0) "
                f"FROM journal_postings WHERE {where} GROUP BY ledger_account", params)
            sums = {row[0]: (int(row[1]), int(row[2])) for row in cur.fetchall()}
        # Every chart account, even at zero, then any the chart does not know yet.
        names = list(CHART) + sorted(set(sums) - set(CHART))
        accounts = []
        for name in names:
            debits, credits = sums.get(name, (0, 0))
            accounts.append({"ledger_account": name, "normal_balance": CHART.get(name),
                             "debit_micros": debits, "credit_micros": credits,
                             "balance_micros": debits - credits})
        total_debits = sum(a["debit_micros"] for a in accounts)
        total_credits = sum(a["credit_micros"] for a in accounts)
        return {"object": "trial_balance", "accounts": accounts,
                "total_debit_micros": total_debits, "total_credit_micros": total_credits,
                "total_micros": total_debits - total_credits,
                "balanced": total_debits == total_credits}

    def customer_pools(self, at: AsOf | None = None) -> dict[str, dict[str, int]]:
        """Outstanding credit per customer account and pool (what balances should show)."""
        pools: dict[str, dict[str, int]] = {}
        for (account_id, ledger_account), kinds in self._customer_sums(at).items():
            pool = ledger_account.split(":", 1)[1]
            pools.setdefault(account_id, {})[pool] = -sum(kinds.values())
        return pools

    def liabilities(self, at: AsOf | None = None) -> dict[str, Any]:
        """Outstanding customer credit in total, by pool and by source of the credit."""
        by_pool = {name.split(":", 1)[1]: 0 for name in CUSTOMER}
        by_source = dict.fromkeys(SOURCES, 0)
        for (_, ledger_account), kinds in self._customer_sums(at).items():
            outstanding = -sum(kinds.values())
            by_pool[ledger_account.split(":", 1)[1]] += outstanding
            for name, amount in _by_source(ledger_account, kinds, outstanding).items():
                by_source[name] = by_source.get(name, 0) + amount
        return {"object": "liabilities", "total_micros": sum(by_pool.values()),
                "by_pool": by_pool, "by_source": by_source,
                "spend_order": {k.split(":", 1)[1]: list(v) for k, v in SPEND_ORDER.items()}}

    def _customer_sums(self, at: AsOf | None) -> dict[tuple[str, str], dict[str, int]]:
        """(account, customer ledger account) -> kind -> sum of its postings."""
        where, params = _point(at)
        marks = ", ".join(["%s"] * len(CUSTOMER))
        with self.db.transaction() as cur:
            cur.execute("SELECT account_id, ledger_account, kind, SUM(amount_micros) "
                        f"FROM journal_postings WHERE ledger_account IN ({marks}) "
                        f"AND {where} GROUP BY account_id, ledger_account, kind",
                        [*CUSTOMER, *params])
            rows = cur.fetchall()
        sums: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for account_id, ledger_account, kind, amount in rows:
            sums[(account_id, ledger_account)][kind] = int(amount)
        return dict(sums)


def _by_source(ledger_account: str, kinds: dict[str, int], outstanding: int) -> dict[str, int]:
    """Split one account's outstanding credit in one pool across its sources: whatever
    was consumed (credited - outstanding) is taken from the sources in spend order."""
    order = SPEND_ORDER.get(ledger_account, ("payment",))
    credited = dict.fromkeys(order, 0)
    for kind, amount in kinds.items():
        name = SOURCE_OF_KIND.get(kind)
        if name in credited and amount < 0:  # credit postings are negative
            credited[name] = credited.get(name, 0) - amount
    consumed = sum(credited.values()) - outstanding
    split = {}
    for name in order[:-1]:
        taken = min(max(consumed, 0), credited[name])
        split[name] = credited[name] - taken
        consumed -= taken
    split[order[-1]] = credited[order[-1]] - consumed  # carries the rest, exactly
    return split


def _point(at: AsOf | None) -> tuple[str, list[Any]]:
    if at is None:
        return "1 = 1", []
    return at.lines_sql()
