"""The events of a bundle, indexed by position with what their audit entries must say."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from entrypoints.audit_verifier_canonical import (
    SYSTEM_ACTOR,
    CanonicalError,
    canonical,
    event_digest,
    event_id,
    event_type,
    is_audited,
    z_time,
)
from entrypoints.audit_verifier_checkpoints import Unverifiable, parse_record
from entrypoints.audit_verifier_lines import LineParser, reject_float

# Index values besides a 32-byte match key: an event no entry may point at, an event whose
# fields cannot match any entry, and two events claiming one position.
NOT_AUDITED = b""
NEVER = b"\x00"
DUPLICATE = b"\x01"


def match_key(eid: Any, kind: Any, recorded: Any, digest: Any, actor: bytes | None) -> bytes:
    """One digest of the fields an entry must share with its event (11.8 check 6)."""
    if (actor is None or type(eid) is not str or type(kind) is not str
            or type(recorded) is not str or type(digest) is not str):
        return NEVER
    text = f"{eid}\x00{kind}\x00{recorded}\x00{digest}"
    if text.count("\x00") != 3:
        return NEVER  # a NUL inside a field would make the split ambiguous
    return hashlib.sha256(text.encode("utf-8", "surrogatepass") + b"\x00" + actor).digest()


def actor_bytes(actor: Any, line: str | None, plain: bool) -> bytes | None:
    """Canonical bytes of an actor object, cut from a canonical ``line`` when possible.

    The caller has found ``actor`` to be the value of an ``actor`` key in the line; if
    ``"actor":{`` occurs once, it is that one. The next ``}`` closes it when no ``{`` comes
    first (no nested object) and an even number of quotes does (it is not inside a string:
    strings in a canonical line hold no quotes).
    """
    if type(actor) is not dict:
        return None
    if line is not None:
        start = line.find('"actor":{')
        if start >= 0 and line.find('"actor":{', start + 9) < 0:
            end = line.find("}", start)
            if line.find("{", start + 9, end) < 0 and line.count('"', start + 8, end) % 2 == 0:
                return line[start + 8:end + 1].encode("ascii")
    return canonical(actor, plain=plain)


def expected_fields(event: dict[str, Any], digest: str | None) -> dict[str, Any]:
    """What an entry for ``event`` must say, by the definitions of docs/audit-bundle.md."""
    state = event.get("state")
    state = state if type(state) is dict else {}
    envelope = state.get("envelope")
    if envelope is None:  # absent or null: the system acted
        actor = SYSTEM_ACTOR
    else:
        actor = envelope.get("actor") if type(envelope) is dict else None
    return {"event_id": event_id(event.get("stream_id"), event.get("version")),
            "event_type": event_type(event.get("topic")),
            "recorded_at": z_time(state.get("timestamp")), "actor": actor,
            "event_digest": digest}


_SYSTEM_ACTOR_BYTES = canonical(SYSTEM_ACTOR)


class EventIndex:
    """Per context, position -> match key, and the sorted positions that need an entry.

    Given a list (records the caller holds anyway), match keys are computed when an entry
    first asks, so a verification stopped at an early failure skips the rest; from a
    stream, at once, keeping 32 bytes per event instead of the event.
    """

    def __init__(self, records: Iterable[Any]) -> None:
        self.by_context: dict[str, dict[int, Any]] = {}
        self.count = 0
        self.parser = LineParser()
        self.lazy = isinstance(records, list | tuple)
        for number, record in enumerate(records, 1):
            self._add(record, number)
        self.audited = {c: sorted(p for p, key in positions.items() if key)
                        for c, positions in self.by_context.items()}

    def _add(self, record: Any, number: int) -> None:
        event = _unaudited_line(record)
        peeked, line, plain = event is not None, None, False
        if event is None:
            event, line, plain = parse_record(record, f"events line {number}", self.parser)
        context, position = event.get("context"), event.get("position")
        if type(context) is not str or type(position) is not int:
            raise Unverifiable(f"events line {number}: no string context and integer position")
        self.count += 1
        kind = event_type(event.get("topic"))
        key: Any = NOT_AUDITED
        if is_audited(kind, event.get("state")):
            if peeked:
                # The peeked topic was not the event's own: parse in full after all.
                event, line, plain = parse_record(record, f"events line {number}", self.parser)
            pending = (event, line, plain, kind, number)
            key = pending if self.lazy else _event_key(*pending)
        positions = self.by_context.get(context)
        if positions is None:
            positions = self.by_context[context] = {}
        positions[position] = DUPLICATE if position in positions else key

    def key(self, context: str, position: int) -> bytes | None:
        """The match key of the event at ``context``/``position``; None if there is none."""
        key = self.by_context.get(context, {}).get(position)
        if type(key) is tuple:
            key = self.by_context[context][position] = _event_key(*key)
        return key


def _event_key(event: dict[str, Any], line: str | None, plain: bool, kind: str,
               number: int) -> bytes:
    try:
        digest = event_digest(event, line, plain)
        state = event.get("state")
        if type(state) is not dict:
            return NEVER
        envelope = state.get("envelope")
        if envelope is None:
            actor = _SYSTEM_ACTOR_BYTES
        else:  # cut from the line only when it is the envelope's actor
            actor = actor_bytes(envelope.get("actor"), line, plain) if type(
                envelope) is dict else None
        return match_key(event_id(event.get("stream_id"), event.get("version")), kind,
                         z_time(state.get("timestamp")), digest, actor)
    except CanonicalError as exc:
        raise Unverifiable(f"events line {number}: {exc}") from None


_NOT_AUDITED_TOPICS = (":InferenceRequest.HoldPlaced", ":InferenceRequest.HoldVoided",
                       ":InferenceRequest.HoldExpired")
_FAST = json.JSONDecoder(parse_float=reject_float, parse_constant=reject_float)


def _unaudited_line(record: Any) -> dict[str, Any] | None:
    """A raw line whose topic says it is never audited, parsed without the canonical proof.

    About half the events are holds placed, voided or expired, and no entry covers them, so
    proving their lines canonical would be wasted. The topic is peeked from the text and
    then read again from the parsed object, which is what counts.
    """
    if type(record) is not str:
        return None
    start = record.find('"topic":"')
    if start < 0:
        return None
    end = record.find('"', start + 9)
    if not record.endswith(_NOT_AUDITED_TOPICS, start + 9, end):
        return None
    try:
        event = _FAST.decode(record)
    except (ValueError, RecursionError):
        return None  # the full parser reports it
    return event if type(event) is dict else None
