"""Balances read model: pools, reservations of open holds, holds and statement lines (6.1, 6.3).

Rules: a balance is the fold of its wallet credits minus settled charges; every change to a
pool writes one statement line, so a statement's lines always sum to the balance.
"""

from __future__ import annotations

from typing import Any

from domain.pools import POOLS
from projections.base import BatchEffects, at, event_type, index_stream, ref_of

CREDIT_POOL = {
    "Wallet.TrialCreditGranted": "trial",
    "Wallet.PurchaseCredited": "purchased",
    "Wallet.AdminCreditGranted": "purchased",
}


class BalancesProjection:
    name = "balances"
    contexts = ("accounts", "requests")

    def __init__(self) -> None:
        # Open holds' reservations as placed (facts from HoldPlaced), so ending a hold needs
        # no read; after a restart the holds table answers instead.
        self._open: dict[str, tuple[str, int, int, int]] = {}

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = event_type(event)
        handler = getattr(self, "_" + kind.replace(".", "_"), None)
        if handler is not None:
            handler(cur, event, effects)

    # -- wallet ---------------------------------------------------------------------------
    def _Wallet_Opened(self, cur, event, effects) -> None:
        cur.execute("INSERT INTO balances (account_id) VALUES (%s) ON CONFLICT DO NOTHING",
                    (event.account_id,))
        index_stream(cur, event, event.account_id)
        effects.touched_accounts.add(event.account_id)

    def _credit(self, cur, event, effects, pool: str, amount: int, kind: str, ref: str,
                text: str) -> None:
        account_id = _account_of_wallet(cur, event)
        cur.execute(f"UPDATE balances SET {pool} = {pool} + %s, "
                    "lifetime_credits = lifetime_credits + %s WHERE account_id = %s",
                    (amount, max(amount, 0), account_id))
        _line(cur, event, account_id, kind, pool, amount, ref, text)
        effects.touched_accounts.add(account_id)

    def _Wallet_TrialCreditGranted(self, cur, event, effects) -> None:
        self._credit(cur, event, effects, "trial", event.amount, "trial_credit", "",
                     "trial credit")
        cur.execute("UPDATE balances SET trial_ends_at = %s WHERE account_id = %s",
                    (event.trial_ends_at, _account_of_wallet(cur, event)))

    def _Wallet_TrialCreditForfeited(self, cur, event, effects) -> None:
        self._debit_pool(cur, event, effects, "trial", event.amount, "trial_forfeit",
                         event.reason)

    def _Wallet_PurchaseCredited(self, cur, event, effects) -> None:
        self._credit(cur, event, effects, "purchased", event.amount, "purchase",
                     event.payment_id, f"purchase {event.package}".strip())

    def _Wallet_AdminCreditGranted(self, cur, event, effects) -> None:
        self._credit(cur, event, effects, "purchased", event.amount, "admin_grant", "",
                     event.reason)

    def _Wallet_AllowanceReset(self, cur, event, effects) -> None:
        # The event names the amount forfeited: folding "whatever is left" would depend on
        # the order in which charges from the requests context were applied, and a rebuild
        # would not reproduce the live balance.
        account_id = _account_of_wallet(cur, event)
        if event.forfeited_unused:
            self._debit_pool(cur, event, effects, "allowance", event.forfeited_unused,
                             "allowance_forfeit", "unused allowance at renewal")
        self._credit(cur, event, effects, "allowance", event.amount, "allowance_reset",
                     event.invoice_id, f"allowance for plan {event.plan}")
        cur.execute("UPDATE balances SET allowance_active = 1 WHERE account_id = %s",
                    (account_id,))

    def _Wallet_AllowanceForfeited(self, cur, event, effects) -> None:
        self._debit_pool(cur, event, effects, "allowance", event.amount, "allowance_forfeit",
                         event.reason)
        cur.execute("UPDATE balances SET allowance_active = 0 WHERE account_id = %s",
                    (_account_of_wallet(cur, event),))

    def _debit_pool(self, cur, event, effects, pool: str, amount: int, kind: str,
                    text: str) -> None:
        account_id = _account_of_wallet(cur, event)
        cur.execute(f"UPDATE balances SET {pool} = {pool} - %s, "
                    "lifetime_debits = lifetime_debits + %s WHERE account_id = %s",
                    (amount, amount, account_id))
        _line(cur, event, account_id, kind, pool, -amount, "", text, suffix=pool)
        effects.touched_accounts.add(account_id)

    # -- requests -------------------------------------------------------------------------
    def _InferenceRequest_HoldPlaced(self, cur, event, effects) -> None:
        r = event.reserved_by_pool
        index_stream(cur, event, event.request_id)
        cur.execute(
            "INSERT INTO holds (request_id, account_id, key_id, hold_micros, reserved_trial, "
            "reserved_allowance, reserved_purchased, placed_at, worker_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (event.request_id, event.account_id, event.key_id, event.hold_micros,
             r.get("trial", 0), r.get("allowance", 0), r.get("purchased", 0), at(event),
             event.worker_id[:64]))
        cur.execute("UPDATE balances SET reserved_trial = reserved_trial + %s, "
                    "reserved_allowance = reserved_allowance + %s, "
                    "reserved_purchased = reserved_purchased + %s WHERE account_id = %s",
                    (r.get("trial", 0), r.get("allowance", 0), r.get("purchased", 0),
                     event.account_id))
        effects.touched_accounts.add(event.account_id)
        if len(self._open) > 100_000:  # holds another process ended; the table still answers
            self._open.clear()
        self._open[event.request_id] = (event.account_id, r.get("trial", 0),
                                        r.get("allowance", 0), r.get("purchased", 0))

    def _end_hold(self, cur, event, effects, outcome: str) -> tuple[str, str] | None:
        request_id = ref_of(cur, event)
        if request_id is None:
            return None
        row = self._open.pop(request_id, None)
        if row is None:
            cur.execute("SELECT account_id, reserved_trial, reserved_allowance, "
                        "reserved_purchased FROM holds WHERE request_id = %s", (request_id,))
            row = cur.fetchone()
            if row is None:
                return None
        account_id, rt, ra, rp = row
        cur.execute("UPDATE holds SET ended_at = %s, outcome = %s WHERE request_id = %s",
                    (at(event), outcome, request_id))
        cur.execute("UPDATE balances SET reserved_trial = reserved_trial - %s, "
                    "reserved_allowance = reserved_allowance - %s, "
                    "reserved_purchased = reserved_purchased - %s WHERE account_id = %s",
                    (rt, ra, rp, account_id))
        effects.touched_accounts.add(account_id)
        effects.released_holds.setdefault(account_id, []).append(request_id)
        return request_id, account_id

    def _InferenceRequest_HoldSettled(self, cur, event, effects) -> None:
        ended = self._end_hold(cur, event, effects, "settled")
        if ended is None:
            return
        request_id, account_id = ended
        for pool in POOLS:
            amount = event.charged_by_pool.get(pool, 0)
            if amount:
                cur.execute(f"UPDATE balances SET {pool} = {pool} - %s, "
                            "lifetime_debits = lifetime_debits + %s WHERE account_id = %s",
                            (amount, amount, account_id))
                _line(cur, event, account_id, "usage", pool, -amount, request_id,
                      f"{event.served_model} via {event.provider}", suffix=pool)

    def _InferenceRequest_HoldVoided(self, cur, event, effects) -> None:
        self._end_hold(cur, event, effects, "voided")

    def _InferenceRequest_HoldExpired(self, cur, event, effects) -> None:
        self._end_hold(cur, event, effects, "expired")


def _account_of_wallet(cur: Any, event: Any) -> str:
    account_id = ref_of(cur, event)
    assert account_id is not None, "wallet event before its Opened event"
    return account_id


def _line(cur: Any, event: Any, account_id: str, kind: str, pool: str, amount: int,
          reference: str, description: str, suffix: str = "") -> None:
    line_id = f"{event.originator_id}:{event.originator_version}{':' + suffix if suffix else ''}"
    cur.execute(
        "INSERT INTO ledger_lines (line_id, account_id, at, kind, pool, amount_micros, "
        "reference, description) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (line_id, account_id, at(event), kind, pool, amount, reference, description[:200]))


class BalanceQueries:
    """Reads of the balances read model, live or as of a past instant (11.10)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    @staticmethod
    def version(cur: Any) -> int:
        cur.execute("SELECT COALESCE(SUM(position), 0) FROM projection_tracking "
                    "WHERE projection = 'balances'")
        return int(cur.fetchone()[0])

    @staticmethod
    def snapshot(cur: Any, account_id: str, version: int, with_holds: bool = False):
        from application.ports import BalanceSnapshot

        cur.execute("SELECT trial, allowance, purchased, trial_ends_at, allowance_active "
                    "FROM balances WHERE account_id = %s", (account_id,))
        row = cur.fetchone()
        if row is None:
            return None
        holds: dict[str, dict[str, int]] = {}
        if with_holds:
            cur.execute("SELECT request_id, reserved_trial, reserved_allowance, "
                        "reserved_purchased FROM holds WHERE account_id = %s AND ended_at IS NULL",
                        (account_id,))
            holds = {r[0]: {"trial": r[1], "allowance": r[2], "purchased": r[3]}
                     for r in cur.fetchall()}
        ends = 0
        if row[3]:
            from datetime import datetime

            ends = int(datetime.fromisoformat(row[3]).timestamp())
        return BalanceSnapshot(pools={"trial": row[0], "allowance": row[1], "purchased": row[2]},
                               trial_ends_epoch=ends, allowance_active=bool(row[4]),
                               version=version, open_holds=holds)

    def balance(self, account_id: str, now_epoch: int, as_of: str | None = None) -> dict | None:
        with self.db.transaction() as cur:
            cur.execute("SELECT opened_at FROM accounts WHERE account_id = %s", (account_id,))
            opened = cur.fetchone()
            if opened is None or (as_of is not None and opened[0] > as_of):
                return None
            cur.execute("SELECT trial_ends_at, allowance_active FROM balances "
                        "WHERE account_id = %s", (account_id,))
            flags = cur.fetchone() or (None, 0)
            pools = {pool: 0 for pool in POOLS}
            reserved = {pool: 0 for pool in POOLS}
            time_filter = "" if as_of is None else " AND at <= %s"
            params: tuple = (account_id,) if as_of is None else (account_id, as_of)
            cur.execute("SELECT pool, COALESCE(SUM(amount_micros), 0) FROM ledger_lines "
                        "WHERE account_id = %s" + time_filter + " GROUP BY pool", params)
            for pool, amount in cur.fetchall():
                pools[pool] = int(amount)
            if as_of is None:
                cur.execute("SELECT COALESCE(SUM(reserved_trial), 0), "
                            "COALESCE(SUM(reserved_allowance), 0), "
                            "COALESCE(SUM(reserved_purchased), 0), COUNT(*) FROM holds "
                            "WHERE account_id = %s AND ended_at IS NULL", (account_id,))
            else:
                cur.execute("SELECT COALESCE(SUM(reserved_trial), 0), "
                            "COALESCE(SUM(reserved_allowance), 0), "
                            "COALESCE(SUM(reserved_purchased), 0), COUNT(*) FROM holds "
                            "WHERE account_id = %s AND placed_at <= %s AND "
                            "(ended_at IS NULL OR ended_at > %s)", (account_id, as_of, as_of))
            row = cur.fetchone()
        reserved = {"trial": int(row[0]), "allowance": int(row[1]), "purchased": int(row[2])}
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
            "open_holds": int(row[3]),
            "available_micros": sum(v["available_micros"] for v in view.values()),
            "pools": view,
            "trial_ends_at": flags[0],
            "arrears": False,
        }

    def expired_holds(self, cutoff: str) -> list[str]:
        with self.db.transaction() as cur:
            cur.execute("SELECT request_id FROM holds WHERE ended_at IS NULL AND placed_at < %s",
                        (cutoff,))
            return [r[0] for r in cur.fetchall()]


def _trial_usable(trial_ends_at: str | None, now_epoch: int) -> bool:
    if not trial_ends_at:
        return False
    from datetime import datetime

    return datetime.fromisoformat(trial_ends_at).timestamp() > now_epoch
