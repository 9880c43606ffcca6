"""Breaker transitions as events (3.3): one stream per breaker key, one event per change."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_uuid


class Health(Aggregate):
    class Tracked(Aggregate.Created):
        key: str  # "p:<provider>" or "pm:<provider>|<model>" (domain/circuit_breaker.py)

    class CircuitStateChanged(Aggregate.Event):
        provider: str
        model: str | None
        from_state: str
        to_state: str
        reason: str  # consecutive_failures, failure_ratio, half_open_timeout, probe_*, reset
        actor: str  # "system", or the admin who reset it

    @staticmethod
    def create_id(key: str, **_: object):
        return stream_uuid(f"breaker:{key}")

    @event(Tracked)
    def __init__(self, key: str) -> None:
        self.key = key
        self.state = "closed"

    @event(CircuitStateChanged)
    def change(self, provider: str, model: str | None, from_state: str, to_state: str,
               reason: str, actor: str) -> None:
        self.state = to_state
