"""Balances read model: pools, reservations of open holds, holds and statement lines (6.1, 6.3).

Rules: a balance is the fold of its wallet credits minus settled charges; every change to a
pool writes one statement line, so a statement's lines always sum to the balance.
"""

from __future__ import annotations

from typing import Any

from domain.pools import POOLS
from projections.as_of import AsOf, record_flags, source
from projections.balance_views import views
from projections.base import BatchEffects, PendingRows, at, event_type, index_stream, ref_of

CREDIT_POOL = {
    "Wallet.TrialCreditGranted": "trial",
    "Wallet.PurchaseCredited": "purchased",
    "Wallet.AdminCreditGranted": "purchased",
}
# A batch adds to these columns once per account (see BalancesProjection._add).
SUMS = ("trial", "allowance", "purchased", "reserved_trial", "reserved_allowance",
        "reserved_purchased", "lifetime_credits", "lifetime_debits")
_INDEX = {column: i for i, column in enumerate(SUMS)}
_ADD = ("UPDATE balances SET " + ", ".join(f"{c} = {c} + %s" for c in SUMS)
        + " WHERE account_id = %s")


class BalancesProjection:
    name = "balances"
    contexts = ("accounts", "requests")

    def __init__(self) -> None:
        # Open holds' reservations as placed (facts from HoldPlaced), so ending a hold needs
        # no read; after a restart the holds table answers instead.
        self._open: dict[str, tuple[str, int, int, int]] = {}
        # Fewer statements per batch (each was a round trip on PostgreSQL): pool and
        # reservation changes summed per account, sent by end_batch (at once in a guarded
        # batch); a hold placed in the batch is inserted with its end folded in.
        self._batch: Any = None
        self._sums: dict[str, list[int]] = {}
        self._holds = PendingRows("holds", "request_id")

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = event_type(event)
        handler = getattr(self, "_" + kind.replace(".", "_"), None)
        if handler is None:
            return
        if self._batch is not effects:  # a new batch, or the retry of one rolled back
            self._batch, self._sums = effects, {}
            self._holds.begin(effects)
        handler(cur, event, effects)
        if effects.guarded:
            self.end_batch(cur, effects)

    def end_batch(self, cur: Any, effects: BatchEffects) -> None:
        if self._batch is not effects:
            return
        # Nothing is kept once sending starts: in a guarded batch a write that fails is
        # rolled back with its event, and must not be sent again with the next one.
        sums, self._sums = self._sums, {}
        self._holds.write(cur)
        for account_id, amounts in sums.items():
            if any(amounts):
                cur.execute(_ADD, [*amounts, account_id])

    def _add(self, account_id: str, **amounts: int) -> None:
        """UPDATE balances SET column = column + amount: additions commute, and nothing in
        the batch reads these columns, so one UPDATE per account at the end is the same."""
        sums = self._sums.get(account_id)
        if sums is None:
            sums = self._sums[account_id] = [0] * len(SUMS)
        for column, amount in amounts.items():
            sums[_INDEX[column]] += amount

    def _send_sums(self, cur: Any, account_id: str) -> None:
        sums = self._sums.pop(account_id, None)
        if sums is not None and any(sums):
            cur.execute(_ADD, [*sums, account_id])

    # -- wallet ---------------------------------------------------------------------------
    def _Wallet_Opened(self, cur, event, effects) -> None:
        self._send_sums(cur, event.account_id)  # an UPDATE before the INSERT stays before
        cur.execute("INSERT INTO balances (account_id, opened_position) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING", (event.account_id, source(effects)[1]))
        index_stream(cur, event, event.account_id)
        effects.touched_accounts.add(event.account_id)

    def _credit(self, cur, event, effects, pool: str, amount: int, kind: str, ref: str,
                text: str) -> None:
        account_id = _account_of_wallet(cur, event)
        self._add(account_id, **{pool: amount, "lifetime_credits": max(amount, 0)})
        _line(cur, event, effects, account_id, kind, pool, amount, ref, text)
        effects.touched_accounts.add(account_id)

    def _Wallet_TrialCreditGranted(self, cur, event, effects) -> None:
        self._credit(cur, event, effects, "trial", event.amount, "trial_credit", "",
                     "trial credit")
        account_id = _account_of_wallet(cur, event)
        cur.execute("UPDATE balances SET trial_ends_at = %s WHERE account_id = %s",
                    (event.trial_ends_at, account_id))
        record_flags(cur, account_id, effects)

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
        record_flags(cur, account_id, effects)

    def _Wallet_AllowanceForfeited(self, cur, event, effects) -> None:
        self._debit_pool(cur, event, effects, "allowance", event.amount, "allowance_forfeit",
                         event.reason)
        account_id = _account_of_wallet(cur, event)
        cur.execute("UPDATE balances SET allowance_active = 0 WHERE account_id = %s",
                    (account_id,))
        record_flags(cur, account_id, effects)

    def _debit_pool(self, cur, event, effects, pool: str, amount: int, kind: str,
                    text: str) -> None:
        account_id = _account_of_wallet(cur, event)
        self._add(account_id, **{pool: -amount, "lifetime_debits": amount})
        _line(cur, event, effects, account_id, kind, pool, -amount, "", text, suffix=pool)
        effects.touched_accounts.add(account_id)

    # -- requests -------------------------------------------------------------------------
    def _InferenceRequest_HoldPlaced(self, cur, event, effects) -> None:
        r = event.reserved_by_pool
        index_stream(cur, event, event.request_id)
        self._holds.insert({
            "request_id": event.request_id, "account_id": event.account_id,
            "key_id": event.key_id, "hold_micros": event.hold_micros,
            "reserved_trial": r.get("trial", 0), "reserved_allowance": r.get("allowance", 0),
            "reserved_purchased": r.get("purchased", 0), "placed_at": at(event),
            "worker_id": event.worker_id[:64], "placed_position": source(effects)[1]})
        self._add(event.account_id, reserved_trial=r.get("trial", 0),
                  reserved_allowance=r.get("allowance", 0),
                  reserved_purchased=r.get("purchased", 0))
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
        pending = self._holds.get(request_id) if row is None else None
        if pending is not None:  # placed in this batch, after the cache was cleared
            row = tuple(pending[c] for c in ("account_id", "reserved_trial",
                                             "reserved_allowance", "reserved_purchased"))
        if row is None:
            cur.execute("SELECT account_id, reserved_trial, reserved_allowance, "
                        "reserved_purchased FROM holds WHERE request_id = %s", (request_id,))
            row = cur.fetchone()
            if row is None:
                return None
        account_id, rt, ra, rp = row
        self._holds.update(cur, request_id, {"ended_at": at(event), "outcome": outcome,
                                             "ended_position": source(effects)[1]})
        self._add(account_id, reserved_trial=-rt, reserved_allowance=-ra,
                  reserved_purchased=-rp)
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
                self._add(account_id, **{pool: -amount, "lifetime_debits": amount})
                _line(cur, event, effects, account_id, "usage", pool, -amount, request_id,
                      f"{event.served_model} via {event.provider}", suffix=pool)

    def _InferenceRequest_HoldVoided(self, cur, event, effects) -> None:
        self._end_hold(cur, event, effects, "voided")

    def _InferenceRequest_HoldExpired(self, cur, event, effects) -> None:
        self._end_hold(cur, event, effects, "expired")


def _account_of_wallet(cur: Any, event: Any) -> str:
    account_id = ref_of(cur, event)
    assert account_id is not None, "wallet event before its Opened event"
    return account_id


def _line(cur: Any, event: Any, effects: BatchEffects, account_id: str, kind: str, pool: str,
          amount: int, reference: str, description: str, suffix: str = "") -> None:
    line_id = f"{event.originator_id}:{event.originator_version}{':' + suffix if suffix else ''}"
    context, position = source(effects)
    cur.execute(
        "INSERT INTO ledger_lines (line_id, account_id, at, kind, pool, amount_micros, "
        "reference, description, context, position) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (line_id, account_id, at(event), kind, pool, amount, reference, description[:200],
         context, position))


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

    def balance(self, account_id: str, now_epoch: int, at: AsOf | None = None) -> dict | None:
        """The account's balance now, or as of ``at``; None if it did not exist then."""
        with self.db.transaction() as cur:
            return views(cur, [account_id], now_epoch, at).get(account_id)

    def page(self, now_epoch: int, at: AsOf | None, after: str | None,
             limit: int) -> tuple[list[dict], bool]:
        """Balances of the accounts after ``after`` in account id order (that existed at
        ``at``), at most ``limit``; and whether more follow."""
        clauses, params = ["1 = 1"], []
        if after is not None:
            clauses.append("account_id > %s")
            params.append(after)
        if at is not None:
            clauses.append("opened_position <= %s")
            params.append(at.positions["accounts"])
        with self.db.transaction() as cur:
            cur.execute("SELECT account_id FROM balances WHERE " + " AND ".join(clauses)
                        + " ORDER BY account_id LIMIT %s", [*params, limit + 1])
            ids = [row[0] for row in cur.fetchall()]
            found = views(cur, ids[:limit], now_epoch, at)
        return [found[i] for i in ids[:limit]], len(ids) > limit

    def expired_holds(self, cutoff: str) -> list[str]:
        with self.db.transaction() as cur:
            cur.execute("SELECT request_id FROM holds WHERE ended_at IS NULL AND placed_at < %s",
                        (cutoff,))
            return [r[0] for r in cur.fetchall()]
