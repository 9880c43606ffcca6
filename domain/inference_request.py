"""InferenceRequest aggregate: one per request, a hold and exactly one terminal event (6.4)."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.ids import stream_uuid

VOID_REASONS = ("provider_error", "timeout", "empty_stream", "rejected",
                "cancelled_before_output", "guardrail", "worker_lost")


class InferenceRequest(Aggregate):
    class HoldPlaced(Aggregate.Created):
        # v2 records the worker instance that placed the hold, so the holds of a worker that
        # died can be voided at once instead of waiting for the TTL.
        class_version = 2
        request_id: str
        account_id: str
        key_id: str
        endpoint: str
        requested_model: str
        candidate_models: list
        price_snapshot: dict
        estimated_input_tokens: int
        output_limit: int
        hold_micros: int
        reserved_by_pool: dict
        stream: bool
        worker_id: str

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state["worker_id"] = ""  # placed before workers were recorded: unknown

    class HoldSettled(Aggregate.Event):
        provider: str
        served_model: str
        attempts: list
        tokens: dict
        token_source: str
        cost_micros: int
        charged_micros: int
        uncollected_micros: int
        charged_by_pool: dict
        finish_reason: str | None
        ttfb_ms: int
        duration_ms: int
        client_disconnected: bool

    class HoldVoided(Aggregate.Event):
        reason: str
        attempts: list
        detail: str

    class HoldExpired(Aggregate.Event):
        hold_micros: int

    @staticmethod
    def create_id(request_id: str, **_: object):
        return stream_uuid(f"request:{request_id}")

    @event(HoldPlaced)
    def __init__(self, request_id: str, account_id: str, key_id: str, endpoint: str,
                 requested_model: str, candidate_models: list, price_snapshot: dict,
                 estimated_input_tokens: int, output_limit: int, hold_micros: int,
                 reserved_by_pool: dict, stream: bool, worker_id: str = "") -> None:
        self.request_id = request_id
        self.worker_id = worker_id
        self.account_id = account_id
        self.hold_micros = hold_micros
        self.reserved_by_pool = reserved_by_pool
        self.outcome: str | None = None

    def _require_open(self) -> None:
        if self.outcome is not None:
            raise DomainError("conflict", f"request already {self.outcome}")

    @event(HoldSettled)
    def _settle(self, provider: str, served_model: str, attempts: list, tokens: dict,
                token_source: str, cost_micros: int, charged_micros: int,
                uncollected_micros: int, charged_by_pool: dict, finish_reason: str | None,
                ttfb_ms: int, duration_ms: int, client_disconnected: bool) -> None:
        self.outcome = "settled"

    def settle(self, *, provider: str, served_model: str, attempts: list, tokens: dict,
               token_source: str, cost_micros: int, charged_by_pool: dict,
               finish_reason: str | None, ttfb_ms: int, duration_ms: int,
               client_disconnected: bool) -> None:
        """Charge min(cost, hold); whatever the hold did not cover is recorded, never billed."""
        self._require_open()
        if cost_micros < 0:
            raise DomainError("invalid_request", "cost must not be negative")
        charged = min(cost_micros, self.hold_micros)
        if sum(charged_by_pool.values()) != charged:
            raise DomainError("invalid_request", "pool charges must add up to the charge")
        self._settle(provider, served_model, attempts, tokens, token_source, cost_micros,
                     charged, cost_micros - charged, charged_by_pool, finish_reason, ttfb_ms,
                     duration_ms, client_disconnected)

    @event(HoldVoided)
    def _void(self, reason: str, attempts: list, detail: str) -> None:
        self.outcome = "voided"

    def void(self, reason: str, attempts: list, detail: str = "") -> None:
        self._require_open()
        if reason not in VOID_REASONS:
            raise DomainError("invalid_request", f"unknown void reason {reason!r}")
        self._void(reason, attempts, detail[:500])

    @event(HoldExpired)
    def _expire(self, hold_micros: int) -> None:
        self.outcome = "expired"

    def expire(self) -> None:
        self._require_open()
        self._expire(self.hold_micros)
