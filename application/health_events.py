"""Breaker transitions to `Health.CircuitStateChanged` events (3.3), never failing a caller.

Called from the health recorder thread (and from an admin reset), so a slow or failing
store costs the request path nothing; a lost event leaves the breaker itself unchanged.
"""

from __future__ import annotations

import logging

from eventsourcing.application import AggregateNotFoundError

from application.retry import with_retry
from domain.circuit_breaker import Transition
from domain.health import Health

log = logging.getLogger("gatewayz.health")


def split_key(key: str) -> tuple[str, str | None]:
    """("openai", None) for "p:openai"; ("openai", "openai/gpt-4o") for "pm:openai|..."."""
    kind, _, rest = key.partition(":")
    if kind == "pm":
        provider, _, model = rest.partition("|")
        return provider, model
    return rest, None


class HealthEvents:
    def __init__(self, app) -> None:
        self.app = app  # the catalog context's Application

    def record(self, transition: Transition, actor: str = "system") -> None:
        try:
            with_retry(lambda: self._save(transition, actor))
        except Exception:
            log.exception("could not record a breaker transition of %s", transition.key)

    def _save(self, transition: Transition, actor: str) -> None:
        try:
            health = self.app.repository.get(Health.create_id(transition.key))
        except AggregateNotFoundError:
            health = Health(key=transition.key)
        provider, model = split_key(transition.key)
        health.change(provider, model, transition.from_state, transition.to_state,
                      transition.reason, actor)
        self.app.save(health)
