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
