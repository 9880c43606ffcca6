"""The ``security`` read model: security events by time, account and kind (11.3, 11.5)."""

from __future__ import annotations

from typing import Any

from application.feed import event_id
from projections.base import BatchEffects, at, index_stream
from projections.ledger_queries import PageRequest, encode_cursor

KINDS = {"Security.AuthenticationFailed": "authentication_failed",
         "Security.AccessDenied": "access_denied",
         "Security.KeyMisuse": "key_misuse",
         "Security.WebhookSignatureRejected": "webhook_signature_rejected"}
_COLUMNS = ("event_id", "position", "security_id", "at", "kind", "reason", "account_id",
            "principal_kind", "principal_id", "credential_kind", "key_prefix", "route",
            "permission", "source", "count", "window_start")


class SecurityProjection:
    name = "security"
    contexts = ("access",)

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = KINDS.get(type(event).__qualname__)
        if kind is None:
            return
        # So the audit trail (projected after this) names the event's target security:sec_...
        index_stream(cur, event, event.security_id)
        note = getattr(effects, "note", None)
        row = {"event_id": event_id(event.originator_id, event.originator_version),
               "position": note.id if note is not None else None,
               "security_id": event.security_id, "at": at(event), "kind": kind,
               "count": getattr(event, "count", 1),
               "window_start": getattr(event, "window_start", None), **_specific(event)}
        cur.execute(f"INSERT INTO security_events ({', '.join(_COLUMNS)}) VALUES "
                    f"({', '.join(['%s'] * len(_COLUMNS))}) ON CONFLICT DO NOTHING",
                    [row.get(column) for column in _COLUMNS])


def _specific(e: Any) -> dict[str, Any]:
    """The columns each event type fills; the encrypted client IP is never copied here."""
    name = type(e).__name__
    if name == "AuthenticationFailed":
        return {"reason": e.reason, "key_prefix": e.key_prefix, "route": e.route}
    if name == "AccessDenied":
        return {"reason": e.reason, "principal_kind": e.principal_kind,
                "principal_id": e.principal_id, "credential_kind": e.credential_kind,
                "key_prefix": e.key_prefix, "route": e.route, "permission": e.permission}
    if name == "KeyMisuse":
        return {"reason": e.kind, "account_id": e.account_id, "principal_kind": "api_key",
                "principal_id": e.key_id, "credential_kind": "api_key", "route": e.route}
    return {"reason": e.reason, "source": e.source}


class SecurityQueries:
    """Listing for GET /audit/security-events: newest first by default, keyset pages."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def page(self, request: PageRequest, *, start: str | None = None, end: str | None = None,
             account_id: str | None = None, kind: str | None = None) -> dict[str, Any]:
        """Events with ``at`` >= start and < end, of one account and/or kind."""
        clauses, params = [], []
        for sql, value in (("at >= %s", start), ("at < %s", end),
                           ("account_id = %s", account_id), ("kind = %s", kind)):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        desc = request.order == "desc"
        if request.after is not None:
            after_at, after_id = request.after
            clauses.append("(at < %s OR (at = %s AND event_id < %s))" if desc
                           else "(at > %s OR (at = %s AND event_id > %s))")
            params += [after_at, after_at, after_id]
        direction = "DESC" if desc else "ASC"
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM security_events {where}"
                        f"ORDER BY at {direction}, event_id {direction} LIMIT %s",
                        [*params, request.limit + 1])
            rows = cur.fetchall()
        has_more = len(rows) > request.limit
        data = [_public(dict(zip(_COLUMNS, row, strict=True))) for row in rows[:request.limit]]
        last = data[-1] if has_more else None
        return {"data": data, "has_more": has_more,
                "next_cursor": encode_cursor(request.order, last["at"], last["event_id"])
                if last else None}


def _public(row: dict[str, Any]) -> dict[str, Any]:
    kind, principal_id = row.pop("principal_kind"), row.pop("principal_id")
    return {"id": row.pop("security_id"), "object": "security_event", **row,
            "position": None if row["position"] is None else int(row["position"]),
            "count": int(row["count"]),
            "principal": {"kind": kind, "id": principal_id} if kind else None}
