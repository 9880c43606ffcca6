"""Makes the hold store agree with durable facts, whichever process projected them.

The hold store (in process or Redis) is a cache. For each account it must hold exactly the
reservations of holds whose end is not yet in its pools. The reconciler decides each cached
or recorded hold from facts only:

- ended in the read model -> release (the pools read in the same transaction carry it);
- open in the read model, or placed in the event store after the projected position ->
  keep, and add it if the cache lost it (restart, Redis data loss);
- in neither: never recorded. Cancel it when its worker is dead; a live worker is about to
  record it (or will cancel it itself when the write fails).

It runs on start, on every sweep, when the projector sees another process's progress, and
when a worker meets an account the cache does not know.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from application.ports import HoldStore, WorkerRegistry
from domain.inference_request import InferenceRequest

log = logging.getLogger("gatewayz.holds")
HOLD_PLACED_TOPIC = get_topic(InferenceRequest.HoldPlaced)
_PAGE = 1000


@dataclass
class ReconcileReport:
    released: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.released) + len(self.added) + len(self.cancelled)


class HoldReconciler:
    def __init__(self, holds: HoldStore, queries: Any, requests_app: Any,
                 workers: WorkerRegistry) -> None:
        self.holds = holds
        self.queries = queries  # projections.hold_queries.HoldQueries
        self.requests = requests_app
        self.workers = workers

    def reconcile_all(self) -> ReconcileReport:
        accounts = set(self.holds.accounts()) | set(self.queries.accounts_with_open_holds())
        return self.reconcile(accounts)

    def reconcile(self, account_ids: Iterable[str]) -> ReconcileReport:
        cached = {a: self.holds.cached_holds(a) for a in account_ids}
        facts = self.queries.facts({a: set(h) for a, h in cached.items()})
        tail = self.unprojected_holds(facts.requests_position, set(cached))
        report = ReconcileReport()
        for account_id, held in cached.items():
            known = facts.accounts[account_id]
            if known.snapshot is None:
                continue  # not projected yet: a later pass loads it
            recorded_later = tail.get(account_id, {})
            release = sorted(h for h in held if h in known.ended)
            add = {h: p for h, p in (known.open_holds | recorded_later).items() if h not in held}
            for hold_id, hold in held.items():
                if hold_id in known.ended or hold_id in known.open_holds \
                        or hold_id in recorded_later:
                    continue
                if not self.workers.alive(hold.worker_id) and not self._recorded(hold_id):
                    self.holds.cancel(account_id, hold_id)
                    report.cancelled.append(hold_id)
            self.holds.reconcile(account_id, known.snapshot, release, add)
            report.released += release
            report.added += list(add)
        if report.changes:
            log.info("hold store reconciled: %d released, %d added, %d cancelled",
                     len(report.released), len(report.added), len(report.cancelled))
        return report

    def verify(self, confirm_after_s: float = 1.0) -> list[str]:
        """Differences between the hold store and the open holds of the event store (the
        projected ones plus the unprojected tail), first one first; empty when they agree.
        Requests in flight make passing differences, so only one seen again after
        ``confirm_after_s`` is reported."""
        first = self._differences()
        if not first or confirm_after_s <= 0:
            return first
        time.sleep(confirm_after_s)
        again = set(self._differences())
        return [line for line in first if line in again]

    def _differences(self) -> list[str]:
        accounts = sorted(set(self.holds.accounts())
                          | set(self.queries.accounts_with_open_holds()))
        cached = {a: self.holds.cached_holds(a) for a in accounts}
        facts = self.queries.facts({a: set(h) for a, h in cached.items()})
        tail = self.unprojected_holds(facts.requests_position, set(accounts))
        found: list[str] = []
        for account_id in accounts:
            expected = facts.accounts[account_id].open_holds | tail.get(account_id, {})
            held = cached[account_id]
            for hold_id in sorted(set(held) - set(expected)):
                found.append(f"{account_id}: hold store reserves {hold_id}, which is not open "
                             "in the event store")
            for hold_id in sorted(set(expected) - set(held)):
                found.append(f"{account_id}: open hold {hold_id} is not reserved in the "
                             "hold store")
            for hold_id in sorted(set(expected) & set(held)):
                if held[hold_id].parts != expected[hold_id]:
                    found.append(f"{account_id}: hold {hold_id} reserves {held[hold_id].parts},"
                                 f" the event store says {expected[hold_id]}")
        return found

    def load_account(self, account_id: str) -> None:
        """Bring an account the cache does not know into it, open holds included."""
        self.reconcile([account_id])

    def unprojected_holds(self, after: int,
                          accounts: set[str]) -> dict[str, dict[str, dict[str, int]]]:
        """Holds placed in the event store after the projected position, by account."""
        found: dict[str, dict[str, dict[str, int]]] = {}
        start = after + 1
        while True:
            notes = self.requests.recorder.select_notifications(
                start=start, limit=_PAGE, topics=[HOLD_PLACED_TOPIC])
            for note in notes:
                event = self.requests.mapper.to_domain_event(note)
                if event.account_id in accounts:
                    found.setdefault(event.account_id, {})[event.request_id] = {
                        "trial": event.reserved_by_pool.get("trial", 0),
                        "allowance": event.reserved_by_pool.get("allowance", 0),
                        "purchased": event.reserved_by_pool.get("purchased", 0)}
            if len(notes) < _PAGE:
                return found
            start = notes[-1].id + 1

    def _recorded(self, hold_id: str) -> bool:
        """Whether the event store holds this request: the only source for "never"."""
        try:
            self.requests.repository.get(InferenceRequest.create_id(hold_id))
        except AggregateNotFoundError:
            return False
        return True
