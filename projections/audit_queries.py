"""Auditors' reads (11.13): the event feed, one stream as of a time, entries with their
proof, checkpoints and projection positions."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from application.feed import CONTEXTS, published, published_notification
from domain.ids import stream_uuid

ENTRY_FILTERS = {"actor": "actor_id", "target": "target_id", "type": "event_type",
                 "request_id": "request_id", "command_id": "command_id"}


class AuditQueries:
    def __init__(self, db: Any, stores: Any) -> None:
        self.db, self.stores = db, stores

    # -- events -----------------------------------------------------------------------------
    def feed(self, context: str, from_position: int, limit: int,
             stream_type: str | None, type_: str | None) -> dict[str, Any]:
        """Events of one context from ``from_position`` on, in position order. Filters
        apply within the page read, so a filtered page may hold fewer than ``limit``."""
        app = self.stores.by_context()[context]
        notes = app.recorder.select_notifications(start=max(from_position, 1), limit=limit)
        events = [published_notification(context, app, note) for note in notes]
        data = [e for e in events if (stream_type is None or e["stream_type"] == stream_type)
                and (type_ is None or e["type"] == type_)]
        top = app.recorder.max_notification_id() or 0
        next_position = notes[-1].id + 1 if notes else max(from_position, 1)
        return {"object": "list", "context": context, "data": data,
                "next_position": next_position, "has_more": next_position <= top}

    def stream(self, stream_id: str, as_of: str | None) -> dict[str, Any] | None:
        """One stream's events (up to ``as_of``) and the state they fold to."""
        try:
            uuid = UUID(stream_id)
        except ValueError:
            uuid = stream_uuid(stream_id)
        for context in CONTEXTS:
            app = self.stores.by_context()[context]
            stored = list(app.recorder.select_events(uuid))
            if not stored:
                continue
            events = [app.mapper.to_domain_event(s) for s in stored]
            if as_of is not None:
                events = [e for e in events
                          if published(context, 0, e)["recorded_at"] <= as_of]
            if not events:
                return None
            shown = []
            for event in events:
                item = published(context, 0, event)
                item.pop("position")  # a stream read does not know notification ids
                shown.append(item)
            aggregate = app.repository.get(uuid, version=events[-1].originator_version)
            state = {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}
            return {"stream_id": str(uuid), "context": context, "as_of": as_of,
                    "version": events[-1].originator_version, "state": _plain(state),
                    "events": shown}
        return None

    # -- entries ----------------------------------------------------------------------------
    def entries(self, from_seq: int, limit: int, filters: dict[str, str],
                start: str | None, end: str | None) -> dict[str, Any]:
        where, params = ["seq >= %s"], [from_seq]
        for name, column in ENTRY_FILTERS.items():
            if filters.get(name):
                where.append(f"{column} = %s")
                params.append(filters[name])
        if start:
            where.append("recorded_at >= %s")
            params.append(start)
        if end:
            where.append("recorded_at < %s")
            params.append(end)
        with self.db.transaction() as cur:
            cur.execute(f"SELECT body FROM audit_entries WHERE {' AND '.join(where)} "
                        "ORDER BY seq LIMIT %s", (*params, limit + 1))
            rows = [json.loads(r[0]) for r in cur.fetchall()]
            more = len(rows) > limit
            rows = rows[:limit]
            data = [dict(row, proof=self._proof(cur, row["seq"])) for row in rows]
        return {"object": "list", "data": data, "has_more": more,
                "next_seq": rows[-1]["seq"] + 1 if more else None}

    def entry(self, seq: int) -> dict[str, Any] | None:
        with self.db.transaction() as cur:
            cur.execute("SELECT body FROM audit_entries WHERE seq = %s", (seq,))
            row = cur.fetchone()
            return None if row is None else dict(json.loads(row[0]),
                                                 proof=self._proof(cur, seq))

    @staticmethod
    def _proof(cur: Any, seq: int) -> dict[str, Any] | None:
        """The first signed checkpoint covering ``seq``: recompute the hashes from this entry
        to its ``seq`` and compare with its signed ``head_hash``."""
        cur.execute("SELECT body, signature FROM audit_checkpoints WHERE seq >= %s "
                    "AND signature IS NOT NULL ORDER BY seq LIMIT 1", (seq,))
        row = cur.fetchone()
        return None if row is None else {"checkpoint": json.loads(row[0]),
                                         "signature": row[1]}

    # -- checkpoints and projections -------------------------------------------------------
    def checkpoints(self, seq: int | None = None) -> list[dict[str, Any]]:
        where = "signature IS NOT NULL" + ("" if seq is None else " AND seq = %s")
        with self.db.transaction() as cur:
            cur.execute(f"SELECT body, signature FROM audit_checkpoints WHERE {where} "
                        "ORDER BY seq", () if seq is None else (seq,))
            return [{"checkpoint": json.loads(b), "signature": s} for b, s in cur.fetchall()]

    def projections(self) -> list[dict[str, Any]]:
        tops = self.stores.max_positions()
        with self.db.transaction() as cur:
            cur.execute("SELECT projection, context, position FROM projection_tracking "
                        "ORDER BY projection, context")
            rows = cur.fetchall()
        return [{"projection": p, "context": c, "position": int(pos),
                 "store_position": tops.get(c, 0), "lag_events": max(tops.get(c, 0) - pos, 0)}
                for p, c, pos in rows]


def _plain(value: Any) -> Any:
    """Aggregate state as JSON: times as text, anything exotic as its string."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)
