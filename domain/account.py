"""Account aggregate: who the customer is and which plan they are on."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.ids import stream_uuid

PLANS = ("trial", "dev", "team", "enterprise")
MIN_ERASURE_REASON_CHARS = 10


class Account(Aggregate):
    class Opened(Aggregate.Created):
        account_id: str
        origin: str
        plan: str
        email_enc: str
        email_domain_hash: str
        actor: str

    class Suspended(Aggregate.Event):
        reason: str
        actor: str

    class Reinstated(Aggregate.Event):
        reason: str
        actor: str

    class Erased(Aggregate.Event):
        """Personal data destroyed (11.12): the data key goes, the events stay as they are."""

        reason: str
        erased_by: str

    @staticmethod
    def create_id(account_id: str, **_: object):
        return stream_uuid(f"account:{account_id}")

    @event(Opened)
    def __init__(self, account_id: str, origin: str, plan: str, email_enc: str,
                 email_domain_hash: str, actor: str) -> None:
        self.account_id = account_id
        self.plan = plan
        self.email_enc = email_enc  # ciphertext only; see adapters/data_keys.py
        self.suspended = False
        self.erased = False

    @event(Suspended)
    def suspend(self, reason: str, actor: str) -> None:
        self.suspended = True

    @event(Reinstated)
    def reinstate(self, reason: str, actor: str) -> None:
        self.suspended = False

    def erase(self, reason: object, erased_by: str) -> None:
        check_erasure(self, reason)
        assert isinstance(reason, str)
        self._erase(reason.strip(), erased_by)

    @event(Erased)
    def _erase(self, reason: str, erased_by: str) -> None:
        self.erased = True


def check_erasure(account: Account | None, reason: object) -> None:
    """Refuse an erasure without a reason, or of an account already erased."""
    if not isinstance(reason, str) or len(reason.strip()) < MIN_ERASURE_REASON_CHARS:
        raise DomainError("invalid_request",
                          f"reason must have at least {MIN_ERASURE_REASON_CHARS} characters",
                          param="reason")
    if account is not None and account.erased:
        raise DomainError("already_erased", "this account has already been erased",
                          param="account_id")
