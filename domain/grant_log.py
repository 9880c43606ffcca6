"""Per-staff-user log of credit grants, the consistency boundary of the 24 h grant cap (6.13)."""

from __future__ import annotations

from datetime import datetime, timedelta

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.ids import stream_uuid
from domain.reasons import MIN_REASON_CHARS, reason_text

MAX_GRANT_MICROS = 1_000 * 1_000_000
MAX_DAILY_GRANTS_MICROS = 5_000 * 1_000_000
WINDOW = timedelta(hours=24)


class GrantLog(Aggregate):
    class Opened(Aggregate.Created):
        staff_user_id: str

    class GrantRecorded(Aggregate.Event):
        account_id: str
        amount: int
        at: str

    @staticmethod
    def create_id(staff_user_id: str, **_: object):
        return stream_uuid(f"grants:{staff_user_id}")

    @event(Opened)
    def __init__(self, staff_user_id: str) -> None:
        self.staff_user_id = staff_user_id
        self.grants: list[tuple[str, int]] = []

    @event(GrantRecorded)
    def _record(self, account_id: str, amount: int, at: str) -> None:
        self.grants.append((at, amount))

    def granted_since(self, since: datetime) -> int:
        return sum(amount for at, amount in self.grants if datetime.fromisoformat(at) > since)

    def record(self, account_id: str, amount: int, now: datetime) -> None:
        """Refuse a grant that would take this staff user past the rolling 24 h cap."""
        check_grant(amount, "x" * MIN_REASON_CHARS)
        used = self.granted_since(now - WINDOW)
        if used + amount > MAX_DAILY_GRANTS_MICROS:
            raise DomainError(
                "grant_limit_exceeded",
                "this grant would exceed the $5,000 per 24 h limit for one admin",
                details={"granted_last_24h_micros": used, "limit_micros": MAX_DAILY_GRANTS_MICROS},
            )
        self._record(account_id, amount, now.isoformat())


def check_grant(amount: object, reason: object) -> None:
    reason_text(reason)
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise DomainError("invalid_request", "amount_micros must be a positive integer",
                          param="amount_micros")
    if amount > MAX_GRANT_MICROS:
        raise DomainError("grant_limit_exceeded", "a single grant is limited to $1,000",
                          param="amount_micros")
