"""``gatewayz audit export``: a self-contained bundle an auditor verifies offline (11.8).

Layout (docs/audit-bundle.md): manifest.json, events.jsonl (every event as stored, up to the
positions the chain has reached, so "every audited event has an entry" is checkable),
entries.jsonl, checkpoints.jsonl (signed ones) and public-keys.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from projections.audit_canonical import canonical
from projections.audit_keys import AuditKeyQueries
from projections.audit_trail import stored_row
from projections.base import stamp

FORMAT = "gatewayz-audit-bundle/1"
PAGE = 5000


def export_bundle(stores: Any, db: Any, clock: Any, target: Path) -> dict[str, Any]:
    target.mkdir(parents=True, exist_ok=True)
    with db.transaction() as cur:
        # One transaction: the entries and the positions they cover agree.
        cur.execute("SELECT context, position FROM projection_tracking "
                    "WHERE projection = 'audit_trail'")
        reached = {context: int(position) for context, position in cur.fetchall()}
        entries = _write_lines(target / "entries.jsonl", _bodies(cur))
        cur.execute("SELECT body, signature FROM audit_checkpoints "
                    "WHERE signature IS NOT NULL ORDER BY seq")
        checkpoints = _write_lines(target / "checkpoints.jsonl", (
            canonical({"checkpoint": json.loads(body), "signature": signature}).decode()
            for body, signature in cur.fetchall()))
    keys = [{k: key[k] for k in ("key_id", "algorithm", "public_key", "valid_from",
                                 "valid_until")} for key in AuditKeyQueries(db).keys()]
    (target / "public-keys.json").write_text(json.dumps({"keys": keys}, indent=1) + "\n")
    events = _write_lines(target / "events.jsonl", _events(stores, reached))
    manifest = {"format": FORMAT, "created_at": stamp(clock.now()), "entries": entries,
                "events": events, "checkpoints": checkpoints}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _bodies(cur: Any):
    after = 0
    while True:
        cur.execute("SELECT seq, body FROM audit_entries WHERE seq > %s ORDER BY seq LIMIT %s",
                    (after, PAGE))
        rows = cur.fetchall()
        if not rows:
            return
        for seq, body in rows:
            yield body
            after = seq


def _events(stores: Any, reached: dict[str, int]):
    for context, app in stores.by_context().items():
        stop, start = reached.get(context, 0), 1
        while start <= stop:
            notes = app.recorder.select_notifications(start=start, limit=PAGE, stop=stop)
            if not notes:
                break
            for note in notes:
                yield canonical(stored_row(context, note)).decode()
            start = notes[-1].id + 1


def _write_lines(path: Path, lines) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
            count += 1
    return count
