"""Incidents read model (3.4, 8.7): incidents, their notes and severity history.

Every time written here is the event's own (``at``), and every row key comes from the event
(the incident id, the event's version in its stream), so a rebuild writes the same rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.incident import OpenIncident
from projections.base import BatchEffects, at, event_type, index_stream, ref_of, stamp

RECENT_DAYS = 90  # 3.4 default: open incidents and those resolved in the last 90 days
_COLUMNS = ("id, provider, model, severity, status, cause, resolution, opened_at, "
            "resolved_at, message")


class IncidentsProjection:
    name = "incidents"
    contexts = ("catalog",)

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = event_type(event)
        if not kind.startswith("Incident."):
            return
        version = event.originator_version
        if kind == "Incident.Opened":
            index_stream(cur, event, event.incident_id)
            cur.execute(
                "INSERT INTO incidents (id, provider, model, severity, status, cause, "
                "opened_at, message) VALUES (%s, %s, %s, %s, 'open', %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (event.incident_id, event.provider, event.model, event.severity, event.cause,
                 at(event), event.message))
            _history(cur, event.incident_id, version, event.severity, at(event))
        elif kind == "Incident.Escalated":
            incident_id = ref_of(cur, event)
            cur.execute("UPDATE incidents SET severity = %s WHERE id = %s",
                        (event.severity, incident_id))
            _history(cur, incident_id, version, event.severity, at(event))
        elif kind == "Incident.NoteAdded":
            cur.execute("INSERT INTO incident_notes (incident_id, seq, text, actor, noted_at) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (ref_of(cur, event), version, event.text, event.actor, at(event)))
        elif kind == "Incident.Resolved":
            cur.execute("UPDATE incidents SET status = 'resolved', resolution = %s, "
                        "resolved_at = %s WHERE id = %s",
                        (event.cause, at(event), ref_of(cur, event)))


def _history(cur: Any, incident_id: str | None, version: int, severity: str,
             when: str) -> None:
    cur.execute("INSERT INTO incident_severity_history (incident_id, seq, severity, "
                "changed_at) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (incident_id, version, severity, when))


def incident_json(row: tuple) -> dict[str, Any]:
    """An incident as the public status endpoints show it: no actor, no account data."""
    (incident_id, provider, model, severity, status, cause, resolution, opened_at,
     resolved_at, message) = row
    return {"id": incident_id, "object": "incident", "provider": provider, "model": model,
            "scope": "model" if model is not None else "provider", "severity": severity,
            "status": status, "cause": cause, "resolution": resolution,
            "message": message, "started_at": opened_at, "resolved_at": resolved_at}


class IncidentQueries:
    def __init__(self, db: Any, now=lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.now = now

    # -- the tracker's -------------------------------------------------------------------
    def open_pairs(self) -> dict[tuple[str, str | None], OpenIncident]:
        with self.db.transaction() as cur:
            cur.execute("SELECT id, provider, model, severity, cause FROM incidents "
                        "WHERE status = 'open'")
            rows = cur.fetchall()
        return {(r[1], r[2]): OpenIncident(r[0], r[3], r[4]) for r in rows}

    def count_for(self, provider: str, model: str | None) -> int:
        """Incidents the pair ever had (its incident numbers run 1..count)."""
        with self.db.transaction() as cur:
            # COALESCE: "model IS %s" is not valid PostgreSQL for a non-NULL parameter.
            cur.execute("SELECT COUNT(*) FROM incidents WHERE provider = %s "
                        "AND COALESCE(model, '') = %s", (provider, model or ""))
            return int(cur.fetchone()[0])

    # -- the status endpoints' ----------------------------------------------------------
    def open_incidents(self) -> list[dict[str, Any]]:
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM incidents WHERE status = 'open' "
                        "ORDER BY opened_at DESC, id")
            return [incident_json(r) for r in cur.fetchall()]

    def recent(self, limit: int = 100,
               days: int = RECENT_DAYS) -> tuple[list[dict[str, Any]], bool]:
        """Open incidents and those resolved in the last ``days``, newest first; and
        whether more than ``limit`` exist."""
        cutoff = stamp(self.now() - timedelta(days=days))
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM incidents WHERE status = 'open' "
                        "OR resolved_at >= %s ORDER BY opened_at DESC, id LIMIT %s",
                        (cutoff, limit + 1))
            rows = cur.fetchall()
        return [incident_json(r) for r in rows[:limit]], len(rows) > limit

    def incident(self, incident_id: str, actors: bool = False) -> dict[str, Any] | None:
        """One incident with its notes, severity history and affected models; ``actors``
        (admin views only) adds who wrote each note."""
        with self.db.transaction() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM incidents WHERE id = %s", (incident_id,))
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute("SELECT text, actor, noted_at FROM incident_notes "
                        "WHERE incident_id = %s ORDER BY seq", (incident_id,))
            notes = cur.fetchall()
            cur.execute("SELECT severity, changed_at FROM incident_severity_history "
                        "WHERE incident_id = %s ORDER BY seq", (incident_id,))
            history = cur.fetchall()
            affected = [row[2]] if row[2] is not None else self._affected(cur, row)
        out = incident_json(row)
        out["notes"] = [{"text": t, "at": a, **({"actor": who} if actors else {})}
                        for t, who, a in notes]
        out["severity_history"] = [{"severity": s, "at": a} for s, a in history]
        out["affected_models"] = affected
        return out

    @staticmethod
    def _affected(cur: Any, row: tuple) -> list[str]:
        """For a provider-level incident: the provider's models whose own incidents
        overlapped it in time."""
        provider, opened_at, resolved_at = row[1], row[7], row[8]
        cur.execute("SELECT DISTINCT model FROM incidents WHERE provider = %s "
                    "AND model IS NOT NULL AND (resolved_at IS NULL OR resolved_at >= %s)"
                    + (" AND opened_at <= %s" if resolved_at else "") + " ORDER BY model",
                    (provider, opened_at, *((resolved_at,) if resolved_at else ())))
        return [r[0] for r in cur.fetchall()]
