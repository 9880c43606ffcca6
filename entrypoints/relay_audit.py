"""The audit trail as a relay source: chained entries to ``<prefix>.audit`` in seq order (11.11).

The relay drains sources that look like an eventsourcing application's notification log;
this one reads ``audit_entries`` by ``seq`` instead, so entries leave with their hashes and
an outside consumer can check the chain as it arrives. One key for every entry keeps them
on one partition, in chain order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

AUDIT = "audit"


@dataclass(frozen=True)
class EntryNote:
    id: int  # the entry's seq: the relay saves it as this source's position
    body: str


class _EntryLog:
    def __init__(self, db: Any) -> None:
        self.db = db

    def max_notification_id(self) -> int:
        with self.db.transaction() as cur:
            cur.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_entries")
            return int(cur.fetchone()[0])

    def select_notifications(self, start: int, limit: int) -> list[EntryNote]:
        with self.db.transaction() as cur:
            cur.execute("SELECT seq, body FROM audit_entries WHERE seq >= %s ORDER BY seq "
                        "LIMIT %s", (start, limit))
            return [EntryNote(int(seq), body) for seq, body in cur.fetchall()]


class AuditEntrySource:
    """Has the ``recorder`` the relay reads from, like an Application."""

    def __init__(self, db: Any) -> None:
        self.recorder = _EntryLog(db)


def entry_message(note: EntryNote, prefix: str) -> tuple[str, bytes, bytes,
                                                          list[tuple[str, bytes]]]:
    entry = json.loads(note.body)
    headers = [("event_id", f"audit-entry:{entry['seq']}".encode()),
               ("event_type", b"Audit.EntryAppended"), ("schema_version", b"1")]
    # The stored body is the canonical entry: published byte for byte as hashed.
    return f"{prefix}.audit", AUDIT.encode(), note.body.encode(), headers
