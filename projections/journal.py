"""The ``journal`` read model: balanced double-entry postings of every money event (6.1, 11.5).

Signs: a debit is positive and a credit negative, so each event's postings sum to zero and
all ledger accounts together sum to zero at every position (the trial balance). A customer
account's liability is therefore negative in the journal: outstanding credit = -sum.

Chart of accounts (normal side, what it holds):
  customer:trial       credit  liability: unspent trial credit, per customer account
  customer:allowance   credit  liability: unspent subscription allowance, per customer account
  customer:purchased   credit  liability: unspent purchased and promotional credit, per account
  cash                 debit   asset: money received for purchases
  promotions           debit   expense: credit given away (trial credit, admin grants; later
                               coupons, referral bonuses, SLA credits)
  subscriptions        debit   clearing: allowance issued for paid invoices (the invoice's
                               cash side arrives with the billing events)
  revenue              credit  income: what served requests charged
  forfeited            credit  income (breakage): trial and allowance credit expired unspent
  uncollected          debit   memo: cost of served requests beyond their hold (never billed)
  revenue_uncollected  credit  memo: the list-price revenue those requests would have earned

Posting rules (debit / credit, amount; zero lines are not written):
  Wallet.TrialCreditGranted    promotions / customer:trial, amount
  Wallet.TrialCreditForfeited  customer:trial / forfeited, amount
  Wallet.PurchaseCredited      cash / customer:purchased, amount
  Wallet.AdminCreditGranted    promotions / customer:purchased, amount
  Wallet.AllowanceReset        customer:allowance / forfeited, forfeited_unused; then
                               subscriptions / customer:allowance, amount
  Wallet.AllowanceForfeited    customer:allowance / forfeited, amount
  Request.HoldSettled          customer:<pool> / revenue, charged_by_pool[pool] per pool; and
                               uncollected / revenue_uncollected, uncollected_micros
  Wallet.Opened, Request.HoldPlaced/HoldVoided/HoldExpired: none (a hold reserves credit, it
                               moves none; the balances read model shows reservations)

Why uncollected is a memo pair: the customer owes nothing for it (6.4: charged = min(cost,
hold), the excess is recorded, never billed), so it is no receivable, and no money moved. A
pair of its own shows finance the leakage (holds sized too small) at list price without
touching customer accounts, cash or revenue; gross revenue at list price is revenue plus
revenue_uncollected, and the pair nets to zero like every entry.

One journal entry per event (a compound entry when it has two parts, each balanced on its
own); its ``entry_id`` is the event's published ``event_id``, so it joins the audit feed.
Every posting carries the customer account the event concerns and the ``kind`` of rule
that wrote it (the liabilities query attributes credit to its source by kind).
"""

from __future__ import annotations

from typing import Any

from application.feed import event_id
from projections.as_of import source
from projections.base import BatchEffects, at, event_type, index_stream, ref_of

# Ledger account -> normal side ("debit" or "credit"); the trial balance lists them in order.
CHART: dict[str, str] = {
    "customer:trial": "credit", "customer:allowance": "credit",
    "customer:purchased": "credit", "cash": "debit", "promotions": "debit",
    "subscriptions": "debit", "revenue": "credit", "forfeited": "credit",
    "uncollected": "debit", "revenue_uncollected": "credit",
}
CUSTOMER = ("customer:trial", "customer:allowance", "customer:purchased")

# Credits into a customer pool: event type -> (debited account, pool, kind).
CREDITS = {
    "Wallet.TrialCreditGranted": ("promotions", "trial", "trial_credit"),
    "Wallet.PurchaseCredited": ("cash", "purchased", "purchase"),
    "Wallet.AdminCreditGranted": ("promotions", "purchased", "admin_grant"),
}
# Credit expired back: event type -> (pool, kind).
FORFEITS = {
    "Wallet.TrialCreditForfeited": ("trial", "trial_forfeit"),
    "Wallet.AllowanceForfeited": ("allowance", "allowance_forfeit"),
}
_ENDS = ("InferenceRequest.HoldVoided", "InferenceRequest.HoldExpired")
_CACHE_MAX = 100_000
_COLUMNS = 9

Line = tuple[str, str, int]  # (ledger account, kind, amount: debit > 0, credit < 0)


class JournalProjection:
    name = "journal"
    contexts = ("accounts", "requests")

    def __init__(self) -> None:
        # Open requests' accounts as placed, so a settlement usually needs no read (a round
        # trip on PostgreSQL); after a restart journal_requests answers instead.
        self._open: dict[str, str] = {}

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = event_type(event)
        if kind in CREDITS:
            debit, pool, rule = CREDITS[kind]
            _post(cur, event, effects, _account_of_wallet(cur, event),
                  [(debit, rule, event.amount), ("customer:" + pool, rule, -event.amount)])
        elif kind in FORFEITS:
            pool, rule = FORFEITS[kind]
            _post(cur, event, effects, _account_of_wallet(cur, event),
                  _forfeit(pool, rule, event.amount))
        elif kind == "Wallet.AllowanceReset":
            # The forfeit of the unused allowance first, then the new period's amount: the
            # event records both facts, so no balance needs reading (order-free, as in
            # the balances projection).
            _post(cur, event, effects, _account_of_wallet(cur, event),
                  _forfeit("allowance", "allowance_forfeit", event.forfeited_unused)
                  + [("subscriptions", "allowance_reset", event.amount),
                     ("customer:allowance", "allowance_reset", -event.amount)])
        elif kind == "Wallet.Opened":
            # The balances projection indexes this stream too; a rebuild of the journal alone
            # runs without it, so the journal indexes what it reads (same row, no conflict).
            index_stream(cur, event, event.account_id)
        elif kind == "InferenceRequest.HoldPlaced":
            cur.execute("INSERT INTO journal_requests (stream, account_id) VALUES (%s, %s) "
                        "ON CONFLICT DO NOTHING", (str(event.originator_id), event.account_id))
            if len(self._open) >= _CACHE_MAX:  # requests another process ended
                self._open.clear()
            self._open[str(event.originator_id)] = event.account_id
        elif kind == "InferenceRequest.HoldSettled":
            self._settled(cur, event, effects)
        elif kind in _ENDS:
            self._open.pop(str(event.originator_id), None)

    def _settled(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        account_id = self._open.pop(str(event.originator_id), None)
        charges = {pool: int(amount) for pool, amount in sorted(event.charged_by_pool.items())
                   if amount}
        if not charges and not event.uncollected_micros:
            return  # a free request: nothing to post, nothing to look up
        if account_id is None:
            cur.execute("SELECT account_id FROM journal_requests WHERE stream = %s",
                        (str(event.originator_id),))
            row = cur.fetchone()
            account_id = row[0] if row is not None else None
        # Revenue is the sum of what each pool gave (not charged_micros), so the entry
        # balances by construction whatever the event says.
        lines: list[Line] = [("customer:" + pool, "usage", amount)
                             for pool, amount in charges.items()]
        lines.append(("revenue", "usage", -sum(charges.values())))
        lines += [("uncollected", "uncollected", event.uncollected_micros),
                  ("revenue_uncollected", "uncollected", -event.uncollected_micros)]
        _post(cur, event, effects, account_id, lines)


def _forfeit(pool: str, rule: str, amount: int) -> list[Line]:
    return [("customer:" + pool, rule, amount), ("forfeited", rule, -amount)]


def _account_of_wallet(cur: Any, event: Any) -> str:
    account_id = ref_of(cur, event)
    assert account_id is not None, "wallet event before its Opened event"
    return account_id


def _post(cur: Any, event: Any, effects: BatchEffects, account_id: str | None,
          lines: list[Line]) -> None:
    """Write one event's postings in one statement; refuse an entry that does not balance."""
    lines = [line for line in lines if line[2]]
    if not lines:
        return
    if sum(amount for _, _, amount in lines) != 0:
        # Never write half a ledger: the runner records the event as failed instead.
        raise ValueError(f"unbalanced journal entry for {event_type(event)}: {lines}")
    context, position = source(effects)
    entry, moment = event_id(event.originator_id, event.originator_version), at(event)
    values: list[Any] = []
    for number, (ledger_account, rule, amount) in enumerate(lines):
        values += [context, position, number, entry, ledger_account, account_id, rule,
                   amount, moment]
    cur.execute("INSERT INTO journal_postings (context, position, line, entry_id, "
                "ledger_account, account_id, kind, amount_micros, at) VALUES "
                + ", ".join(["(" + ", ".join(["%s"] * _COLUMNS) + ")"] * len(lines))
                + " ON CONFLICT DO NOTHING", values)
