"""Hold sweeper: ends holds left open past the request cap with HoldExpired, charge 0 (6.4)."""

from __future__ import annotations

from datetime import timedelta

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from application.ports import Clock
from domain.errors import DomainError
from domain.inference_request import InferenceRequest

HOLD_TTL = timedelta(seconds=660)


def sweep_expired_holds(app: Application, open_holds_before, clock: Clock) -> int:
    """Expire every hold placed before now - TTL that has no terminal event yet."""
    from projections.base import stamp

    expired = 0
    for request_id in open_holds_before(stamp(clock.now() - HOLD_TTL)):
        aggregate = app.repository.get(InferenceRequest.create_id(request_id))
        try:
            aggregate.expire()
            app.save(aggregate)
            expired += 1
        except (DomainError, IntegrityError):
            continue  # it settled meanwhile: exactly one terminal event either way
    return expired


def sweep_orphan_holds(holds, hold_recorded, clock: Clock) -> int:
    """Release reservations whose request never recorded a hold (its worker died between
    reserving and writing), so they cannot lock a customer's balance for good."""
    cutoff = int((clock.now() - HOLD_TTL).timestamp())
    released = 0
    for account_id, hold_id in holds.stale_holds(cutoff):
        if not hold_recorded(hold_id):
            holds.cancel(account_id, hold_id)
            released += 1
    return released
