"""Hold sweeper: ends holds nobody will end, from facts in the event store (6.4).

- A hold open past the TTL (request cap 600 s + 60 s) gets HoldExpired, charge 0.
- A hold whose worker is dead (no heartbeat) gets HoldVoided("worker_lost"), charge 0, within
  one sweep of the death instead of 11 minutes later; a live worker's hold is never touched.
Each decision reloads the request from the event store, so a hold that settled meanwhile
keeps its one terminal event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from application.ports import Clock, WorkerRegistry
from domain.errors import DomainError
from domain.inference_request import InferenceRequest

REQUEST_CAP = timedelta(seconds=600)
HOLD_TTL = REQUEST_CAP + timedelta(seconds=60)
SWEEP_INTERVAL_S = 5.0


def sweep_expired_holds(app: Application, open_holds_before, clock: Clock) -> int:
    """Expire every hold placed before now - TTL that has no terminal event yet."""
    from projections.base import stamp

    ended = 0
    for request_id in open_holds_before(stamp(clock.now() - HOLD_TTL)):
        ended += _end(app, request_id, lambda agg: agg.expire())
    return ended


def void_holds_of_dead_workers(app: Application,
                               open_holds_by_worker: Callable[[], list[tuple[str, str]]],
                               workers: WorkerRegistry) -> int:
    """Void the open holds whose placing worker no longer beats."""
    verdicts: dict[str, bool] = {}
    ended = 0
    for request_id, worker_id in open_holds_by_worker():
        if worker_id not in verdicts:
            verdicts[worker_id] = workers.alive(worker_id)
        if not verdicts[worker_id]:
            ended += _end(app, request_id, lambda agg: agg.void(
                "worker_lost", [], "the worker serving this request stopped"))
    return ended


def _end(app: Application, request_id: str, verb: Callable[[InferenceRequest], None]) -> int:
    aggregate = app.repository.get(InferenceRequest.create_id(request_id))
    try:
        verb(aggregate)
        app.save(aggregate)
    except (DomainError, IntegrityError):
        return 0  # it ended meanwhile: exactly one terminal event either way
    return 1
