"""What selection (domain/selection.py) needs to know of each offer: its catalog facts and
what health says of its provider right now (2.6, 2.7, 3.3, 3.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from application.catalog_view import Offer
from domain.selection import Candidate


@dataclass(frozen=True)
class Signals:
    success_rate: float | None = None  # 0..1 over 5 minutes; None below 10 samples
    latency_ewma_ms: float | None = None
    in_flight: int = 0
    circuit_open: bool = False
    credit_level: str | None = None
    retry_at: float | None = None  # an open breaker's half-open time (epoch seconds)


UNKNOWN = Signals()


class HealthSource(Protocol):
    def signals(self, provider: str, model_id: str) -> Signals: ...


class NoHealth:
    def signals(self, provider: str, model_id: str) -> Signals:
        return UNKNOWN


def candidates_of(offers: list[Offer], model_id: str, health: HealthSource) -> list[Candidate]:
    out = []
    for offer in offers:
        p = offer.provider
        try:
            s = health.signals(p.slug, model_id)
        except Exception:  # 2.7: health that cannot be read never fails a request
            s = UNKNOWN
        out.append(Candidate(
            slug=p.slug, priority=p.priority, weight=p.weight, prices=offer.prices,
            capabilities=offer.capabilities or frozenset(), context_length=None,
            success_rate=s.success_rate, latency_ewma_ms=s.latency_ewma_ms,
            in_flight=s.in_flight, circuit_open=s.circuit_open, credit_level=s.credit_level))
    return out
