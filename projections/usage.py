"""Usage read model: one row per inference request with tokens, cost and outcome (8.6)."""

from __future__ import annotations

import json
from typing import Any

from projections.base import BatchEffects, at, event_type, index_stream, ref_of


class UsageProjection:
    name = "usage"
    contexts = ("requests",)

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = event_type(event)
        if kind == "InferenceRequest.HoldPlaced":
            index_stream(cur, event, event.request_id)
            cur.execute(
                "INSERT INTO requests (request_id, account_id, key_id, endpoint, "
                "requested_model, stream, status, hold_micros, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, 'open', %s, %s) ON CONFLICT DO NOTHING",
                (event.request_id, event.account_id, event.key_id, event.endpoint,
                 event.requested_model, int(event.stream), event.hold_micros, at(event)))
        elif kind == "InferenceRequest.HoldSettled":
            tokens = event.tokens
            cur.execute(
                "UPDATE requests SET status = 'settled', provider = %s, served_model = %s, "
                "prompt_tokens = %s, completion_tokens = %s, token_source = %s, "
                "cost_micros = %s, charged_micros = %s, uncollected_micros = %s, "
                "finish_reason = %s, ttfb_ms = %s, duration_ms = %s, client_disconnected = %s, "
                "attempts = %s, ended_at = %s WHERE request_id = %s",
                (event.provider, event.served_model, tokens.get("prompt_tokens", 0),
                 tokens.get("completion_tokens", 0), event.token_source, event.cost_micros,
                 event.charged_micros, event.uncollected_micros, event.finish_reason,
                 event.ttfb_ms, event.duration_ms, int(event.client_disconnected),
                 json.dumps(event.attempts, sort_keys=True), at(event), ref_of(cur, event)))
        elif kind == "InferenceRequest.HoldVoided":
            cur.execute(
                "UPDATE requests SET status = 'voided', void_reason = %s, attempts = %s, "
                "charged_micros = 0, ended_at = %s WHERE request_id = %s",
                (event.reason, json.dumps(event.attempts, sort_keys=True), at(event),
                 ref_of(cur, event)))
        elif kind == "InferenceRequest.HoldExpired":
            cur.execute("UPDATE requests SET status = 'expired', charged_micros = 0, "
                        "ended_at = %s WHERE request_id = %s", (at(event), ref_of(cur, event)))


class UsageQueries:
    def __init__(self, db: Any) -> None:
        self.db = db

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
