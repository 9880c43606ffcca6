"""Account aggregate: who the customer is and which plan they are on."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_uuid

PLANS = ("trial", "dev", "team", "enterprise")


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

    @staticmethod
    def create_id(account_id: str, **_: object):
        return stream_uuid(f"account:{account_id}")

    @event(Opened)
    def __init__(self, account_id: str, origin: str, plan: str, email_enc: str,
                 email_domain_hash: str, actor: str) -> None:
        self.account_id = account_id
        self.plan = plan
        self.suspended = False

    @event(Suspended)
    def suspend(self, reason: str, actor: str) -> None:
        self.suspended = True

    @event(Reinstated)
    def reinstate(self, reason: str, actor: str) -> None:
        self.suspended = False
