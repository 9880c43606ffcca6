"""Usage read model: one row per inference request with tokens, cost and outcome (8.6)."""

from __future__ import annotations

import json
from typing import Any

from projections.base import BatchEffects, PendingRows, at, event_type, index_stream, ref_of


class UsageProjection:
    name = "usage"
    contexts = ("requests",)

    def __init__(self) -> None:
        # Requests opened in this batch, their end folded in: one INSERT instead of an
        # INSERT and an UPDATE (each a round trip on PostgreSQL), sent by end_batch.
        self._rows = PendingRows("requests", "request_id")

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = event_type(event)
        self._rows.begin(effects)
        if kind == "InferenceRequest.HoldPlaced":
            index_stream(cur, event, event.request_id)
            self._rows.insert({
                "request_id": event.request_id, "account_id": event.account_id,
                "key_id": event.key_id, "endpoint": event.endpoint,
                "requested_model": event.requested_model, "stream": int(event.stream),
                "status": "open", "hold_micros": event.hold_micros, "created_at": at(event)})
        elif kind == "InferenceRequest.HoldSettled":
            tokens = event.tokens
            self._end(cur, event, {
                "status": "settled", "provider": event.provider,
                "served_model": event.served_model,
                "prompt_tokens": tokens.get("prompt_tokens", 0),
                "completion_tokens": tokens.get("completion_tokens", 0),
                "token_source": event.token_source, "cost_micros": event.cost_micros,
                "charged_micros": event.charged_micros,
                "uncollected_micros": event.uncollected_micros,
                "finish_reason": event.finish_reason, "ttfb_ms": event.ttfb_ms,
                "duration_ms": event.duration_ms,
                "client_disconnected": int(event.client_disconnected),
                "attempts": json.dumps(event.attempts, sort_keys=True), "ended_at": at(event)})
        elif kind == "InferenceRequest.HoldVoided":
            self._end(cur, event, {
                "status": "voided", "void_reason": event.reason,
                "attempts": json.dumps(event.attempts, sort_keys=True), "charged_micros": 0,
                "ended_at": at(event)})
        elif kind == "InferenceRequest.HoldExpired":
            self._end(cur, event, {"status": "expired", "charged_micros": 0,
                                   "ended_at": at(event)})
        if effects.guarded:  # every write inside this event's savepoint
            self._rows.write(cur)

    def _end(self, cur: Any, event: Any, values: dict[str, Any]) -> None:
        request_id = ref_of(cur, event)
        if request_id is not None:  # (an UPDATE ... WHERE request_id = NULL changes nothing)
            self._rows.update(cur, request_id, values)

    def end_batch(self, cur: Any, effects: BatchEffects) -> None:
        self._rows.begin(effects)
        self._rows.write(cur)


class UsageQueries:
    def __init__(self, db: Any) -> None:
        self.db = db

    def requests_per_model(self, since: str) -> dict[str, int]:
        """Settled requests per served model since ``since`` (5.5 sort=popularity)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT served_model, COUNT(*) FROM requests WHERE created_at >= %s "
                        "AND served_model IS NOT NULL GROUP BY served_model", (since,))
            return {r[0]: int(r[1]) for r in cur.fetchall()}

    def record(self, request_id: str) -> dict | None:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT request_id, account_id, key_id, endpoint, requested_model, stream, "
                "status, hold_micros, provider, served_model, prompt_tokens, completion_tokens, "
                "token_source, cost_micros, charged_micros, uncollected_micros, finish_reason, "
                "ttfb_ms, duration_ms, client_disconnected, void_reason, attempts, created_at, "
                "ended_at FROM requests WHERE request_id = %s", (request_id,))
            row = cur.fetchone()
        if row is None:
            return None
        names = ("id", "account_id", "key_id", "endpoint", "requested_model", "stream",
                 "status", "hold_micros", "provider", "served_model", "prompt_tokens",
                 "completion_tokens", "token_source", "cost_micros", "charged_micros",
                 "uncollected_micros", "finish_reason", "ttfb_ms", "duration_ms",
                 "client_disconnected", "void_reason", "attempts", "created_at", "ended_at")
        record = dict(zip(names, row, strict=True))
        record["object"] = "request"
        record["stream"] = bool(record["stream"])
        record["client_disconnected"] = bool(record["client_disconnected"]) \
            if record["client_disconnected"] is not None else None
        record["attempts"] = json.loads(record["attempts"])
        return record
