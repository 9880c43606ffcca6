"""Balance views of one or many accounts, live or as of a point (6.3, 11.10).

Pools are the sums of the account's statement lines and reservations the sums of its open
holds, so a live view and an as-of view are the same query with a different filter: as of
a point, only rows whose (context, position) is at or before it (projections/as_of.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.pools import POOLS
from projections.as_of import AsOf


def views(cur: Any, account_ids: list[str], now_epoch: float,
          at: AsOf | None) -> dict[str, dict]:
    """Balance views of existing accounts. Live: the rows as they stand. As of ``at``:
    only rows whose (context, position) is at or before it, and trial usability judged
    at its instant rather than now, so the answer never changes."""
    if not account_ids:
        return {}
    ids = ", ".join(["%s"] * len(account_ids))
    if at is None:
        cur.execute(f"SELECT account_id, trial_ends_at, allowance_active FROM balances "
                    f"WHERE account_id IN ({ids})", account_ids)
        flags = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
        lines_sql, lines_params = "1 = 1", []
        holds_sql, holds_params = "ended_at IS NULL", []
    else:
        accounts, requests = at.positions["accounts"], at.positions["requests"]
        cur.execute(f"SELECT account_id FROM balances WHERE account_id IN ({ids}) "
                    "AND opened_position <= %s", [*account_ids, accounts])
        flags = {r[0]: (None, 0) for r in cur.fetchall()}
        cur.execute(f"SELECT account_id, trial_ends_at, allowance_active FROM balance_flags "
                    f"WHERE account_id IN ({ids}) AND position <= %s "
                    "ORDER BY account_id, position", [*account_ids, accounts])
        flags.update({r[0]: (r[1], r[2]) for r in cur.fetchall() if r[0] in flags})
        lines_sql, lines_params = at.lines_sql()
        holds_sql = "placed_position <= %s AND (ended_position IS NULL OR ended_position > %s)"
        holds_params = [requests, requests]
        now_epoch = at.epoch()
    pools = {a: dict.fromkeys(POOLS, 0) for a in flags}
    cur.execute(f"SELECT account_id, pool, COALESCE(SUM(amount_micros), 0) FROM ledger_lines "
                f"WHERE account_id IN ({ids}) AND {lines_sql} GROUP BY account_id, pool",
                [*account_ids, *lines_params])
    for account_id, pool, amount in cur.fetchall():
        if account_id in pools:
            pools[account_id][pool] = int(amount)
    held = {a: (0, 0, 0, 0) for a in flags}
    cur.execute("SELECT account_id, COALESCE(SUM(reserved_trial), 0), "
                "COALESCE(SUM(reserved_allowance), 0), COALESCE(SUM(reserved_purchased), 0), "
                f"COUNT(*) FROM holds WHERE account_id IN ({ids}) AND {holds_sql} "
                "GROUP BY account_id", [*account_ids, *holds_params])
    for account_id, *row in cur.fetchall():
        if account_id in held:
            held[account_id] = tuple(int(v) for v in row)
    return {a: _view(a, pools[a], held[a], flags[a], now_epoch) for a in flags}


def _view(account_id: str, pools: dict[str, int], held: tuple, flags: tuple,
          now_epoch: float) -> dict:
    reserved = {"trial": held[0], "allowance": held[1], "purchased": held[2]}
    eligible = {"trial": _trial_usable(flags[0], now_epoch), "allowance": bool(flags[1]),
                "purchased": True}
    view = {
        pool: {"balance_micros": pools[pool], "reserved_micros": reserved[pool],
               "available_micros": max(pools[pool] - reserved[pool], 0)
               if eligible[pool] else 0, "usable": eligible[pool]}
        for pool in POOLS
    }
    return {
        "object": "balance",
        "account_id": account_id,
        "balance_micros": sum(pools.values()),
        "open_holds_micros": sum(reserved.values()),
        "open_holds": held[3],
        "available_micros": sum(v["available_micros"] for v in view.values()),
        "pools": view,
        "trial_ends_at": flags[0],
        "arrears": False,
    }


def _trial_usable(trial_ends_at: str | None, now_epoch: float) -> bool:
    if not trial_ends_at:
        return False
    return datetime.fromisoformat(trial_ends_at).timestamp() > now_epoch
