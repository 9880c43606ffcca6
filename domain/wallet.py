"""Wallet aggregate: every movement of money *into* an account, per pool (spec 6.1, 6.3).

Charges are not here: each inference request is its own aggregate (design §2, contention
rule), and balances are folded by the balances projection from both streams.
"""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.ids import stream_uuid


class Wallet(Aggregate):
    class Opened(Aggregate.Created):
        account_id: str

    class TrialCreditGranted(Aggregate.Event):
        amount: int
        trial_ends_at: str

    class TrialCreditForfeited(Aggregate.Event):
        amount: int
        reason: str

    class PurchaseCredited(Aggregate.Event):
        payment_id: str
        amount_paid_cents: int
        amount: int
        package: str
        actor: str

    class AdminCreditGranted(Aggregate.Event):
        amount: int
        reason: str
        actor: str
        grant_batch_id: str

    class AllowanceReset(Aggregate.Event):
        plan: str
        invoice_id: str
        amount: int
        forfeited_unused: int

    class AllowanceForfeited(Aggregate.Event):
        amount: int
        reason: str

    @staticmethod
    def create_id(account_id: str, **_: object):
        return stream_uuid(f"wallet:{account_id}")

    @event(Opened)
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.payment_ids: list[str] = []
        self.grant_ids: list[str] = []
        self.invoice_ids: list[str] = []
        self.trial_granted = False

    @event(TrialCreditGranted)
    def _grant_trial(self, amount: int, trial_ends_at: str) -> None:
        self.trial_granted = True

    def grant_trial(self, amount: int, trial_ends_at: str) -> None:
        if self.trial_granted:
            raise DomainError("conflict", "this account already had its trial")
        _positive(amount)
        self._grant_trial(amount, trial_ends_at)

    @event(TrialCreditForfeited)
    def forfeit_trial(self, amount: int, reason: str) -> None:
        pass

    @event(PurchaseCredited)
    def _credit_purchase(self, payment_id: str, amount_paid_cents: int, amount: int,
                         package: str, actor: str) -> None:
        self.payment_ids.append(payment_id)

    def credit_purchase(self, payment_id: str, amount_paid_cents: int, amount: int,
                        package: str, actor: str) -> bool:
        """Credit a payment once; a repeat of the same payment is recognised, not applied."""
        if payment_id in self.payment_ids:
            return False
        _positive(amount)
        self._credit_purchase(payment_id, amount_paid_cents, amount, package, actor)
        return True

    @event(AdminCreditGranted)
    def _grant(self, amount: int, reason: str, actor: str, grant_batch_id: str) -> None:
        if grant_batch_id:
            self.grant_ids.append(grant_batch_id)

    def grant(self, amount: int, reason: str, actor: str, grant_batch_id: str) -> bool:
        """Grant once per grant id (the command id of an idempotent request): a repeat is
        recognised, not applied. An empty id is a grant with no idempotency of its own."""
        if grant_batch_id and grant_batch_id in self.grant_ids:
            return False
        _positive(amount)
        self._grant(amount, reason, actor, grant_batch_id)
        return True

    @event(AllowanceReset)
    def _reset_allowance(self, plan: str, invoice_id: str, amount: int,
                         forfeited_unused: int) -> None:
        self.invoice_ids.append(invoice_id)

    def reset_allowance(self, plan: str, invoice_id: str, amount: int,
                        forfeited_unused: int) -> bool:
        """Reset the allowance to the plan amount, once per invoice (no rollover)."""
        if invoice_id in self.invoice_ids:
            return False
        if amount < 0 or forfeited_unused < 0:
            raise DomainError("invalid_request", "amounts must not be negative")
        self._reset_allowance(plan, invoice_id, amount, forfeited_unused)
        return True

    @event(AllowanceForfeited)
    def forfeit_allowance(self, amount: int, reason: str) -> None:
        pass


def _positive(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise DomainError("invalid_request", "amount must be a positive integer of micros",
                          param="amount_micros")
