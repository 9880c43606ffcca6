"""The hash-chained audit trail (11.6): one entry per audited event, one linear chain.

Entries are appended by the projector in the transaction that moves its tracking position,
so a rolled-back batch leaves no entry and does not move the head. On PostgreSQL several
projector processes may run (one per context at a time); each takes the chain's advisory
lock before reading the head, so they queue instead of forking the chain, and the unique
``prev_hash`` makes a fork impossible even if that were wrong. Every 1,000 entries a pending
checkpoint is noted in the same transaction; the signer (application/audit_checkpoints.py)
signs it with a key that never enters the database.

The chain's order is the order the projector reached the events, not a pure function of the
events (four contexts, four logs), so ``replay --verify`` leaves it out; ``gatewayz audit
verify`` checks it instead, including that every audited event has exactly one entry.
"""

from __future__ import annotations

import hashlib
from json.encoder import encode_basestring
from typing import Any

import msgspec

from application import envelope
from application.feed import data_of, event_id, recorded_at, stream_type, type_name
from domain import audit_rules
from projections.audit_canonical import GENESIS, canonical, digest
from projections.base import BatchEffects, ref_of

CHECKPOINT_EVERY = 1000
_decode = msgspec.json.Decoder().decode


class AuditTrailProjection:
    name = "audit_trail"
    contexts = ("accounts", "access", "requests", "catalog")

    def __init__(self) -> None:
        self._batch: Any = None  # the BatchEffects whose transaction the head below is from
        self._head: tuple[int, str] = (0, GENESIS)
        self._checkpointed = 0

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = type_name(event)
        data = data_of(event)
        if not audit_rules.audited(kind, data):
            return
        if effects.guarded or self._batch is not effects:
            self._load_head(cur)
            self._batch = effects
        note = effects.note
        seq, prev = self._head[0] + 1, self._head[1]
        stored = envelope.of(event)
        entry: dict[str, Any] = {
            "seq": seq, "context": effects.context, "position": note.id,
            "event_id": event_id(event.originator_id, event.originator_version),
            "event_digest": digest(stored_row(effects.context, note)),
            "event_type": kind, "recorded_at": recorded_at(event.timestamp),
            "actor": stored["actor"],
            "target": {"type": stream_type(event),
                       "id": ref_of(cur, event) or str(event.originator_id)},
            "action": audit_rules.action(kind), "summary": audit_rules.summary(kind, data),
            "prev_hash": prev,
        }
        for field, source in (("command_id", "command_id"), ("request_id", "correlation_id")):
            if stored.get(source):
                entry[field] = stored[source]
        entry["hash"], body = _hash_and_body(prev, entry)
        actor = entry["actor"]
        cur.execute(
            "INSERT INTO audit_entries (seq, context, position, event_id, event_type, "
            "recorded_at, actor_kind, actor_id, target_type, target_id, command_id, "
            "request_id, prev_hash, hash, body) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (seq, entry["context"], entry["position"], entry["event_id"], kind,
             entry["recorded_at"], actor["kind"], actor["id"], entry["target"]["type"],
             entry["target"]["id"], entry.get("command_id"), entry.get("request_id"), prev,
             entry["hash"], body))
        self._head = (seq, entry["hash"])
        if seq - self._checkpointed >= CHECKPOINT_EVERY:
            cur.execute("INSERT INTO audit_checkpoints (seq, head_hash, previous_seq) "
                        "VALUES (%s, %s, %s)", (seq, entry["hash"], self._checkpointed))
            self._checkpointed = seq

    def _load_head(self, cur: Any) -> None:
        if _is_postgres(cur):
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || "
                        "':audit-chain'))")
        cur.execute("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
        row = cur.fetchone()
        self._head = (row[0], row[1]) if row else (0, GENESIS)
        cur.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints")
        self._checkpointed = cur.fetchone()[0]


def _hash_and_body(prev: str, entry: dict[str, Any]) -> tuple[str, str]:
    """entry_hash(prev, entry) and canonical(entry with its hash), each value encoded once
    (the whole entry twice was a third of the trail's CPU in a rebuild).

    Exact: with sorted keys and no whitespace the canonical text of an object is "{", then
    "key":value per key in code point order joined by ",", then "}" (the keys here are fixed
    ASCII names); an int is its repr and an ASCII string (NFC already) is what
    ``encode_basestring`` makes of it, as json.dumps(ensure_ascii=False) does; anything
    else goes through canonical() itself.
    """
    values = {key: _encoded(value) for key, value in entry.items()}
    text = ",".join(f'"{key}":{values[key]}' for key in sorted(values))
    hashed = hashlib.sha256(bytes.fromhex(prev) + ("{" + text + "}").encode()).hexdigest()
    values["hash"] = f'"{hashed}"'
    return hashed, "{" + ",".join(f'"{key}":{values[key]}' for key in sorted(values)) + "}"


def _encoded(value: Any) -> str:
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is str and value.isascii():
        return encode_basestring(value)
    return canonical(value).decode()


def stored_row(context: str, note: Any) -> dict[str, Any]:
    """An event exactly as stored (before upcasting): what the chain digests and the bundle
    carries, so a later schema version never changes an old entry's digest."""
    return {"context": context, "position": note.id, "stream_id": str(note.originator_id),
            "version": note.originator_version, "topic": note.topic,
            "state": _decode(note.state)}


def _is_postgres(cur: Any) -> bool:
    return type(cur).__module__.startswith("psycopg")
