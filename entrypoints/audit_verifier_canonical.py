"""Canonical bytes, hashes and ids of the audit bundle, written independently of the writer.

Spec 11.6 forbids the verifier to share hashing or encoding code with the audit writer, so
this module depends on the standard library only. The encoding is documented for auditors
in docs/audit-bundle.md and pinned by tests/audit/golden_vectors.json.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

ZERO_HASH = "0" * 64
EVENT_NAMESPACE_BYTES = bytes.fromhex("0b6f3c1e8d2a4e579c407a1d5e2b9f63")
SYSTEM_ACTOR = {"kind": "system", "id": "gatewayz"}
Z_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
HEX64 = re.compile(r"[0-9a-f]{64}")

# Characters that cannot appear literally inside a canonical string.
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')
_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update({0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n",
                 0x0D: "\\r", 0x09: "\\t"})
_EVENT_FIELDS = ("context", "position", "stream_id", "version", "topic", "state")
_EVENT_KEYS = frozenset(_EVENT_FIELDS)


class CanonicalError(ValueError):
    """The value has no canonical form (a float, a lone surrogate, a clash of keys...)."""


def _string(s: str) -> str:
    if not s.isascii():
        # ASCII is already NFC; only the rest pays for the normalisation check.
        if not unicodedata.is_normalized("NFC", s):
            s = unicodedata.normalize("NFC", s)
    if _NEEDS_ESCAPE.search(s) is not None:
        s = s.translate(_ESCAPES)
    return '"' + s + '"'


def _nfc(key: Any) -> str:
    if type(key) is not str:
        raise CanonicalError(f"object key {key!r} is not a string")
    return key if key.isascii() else unicodedata.normalize("NFC", key)


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def _encode(value: Any) -> str:
    t = type(value)
    if t is str:
        if value.isascii() and _NEEDS_ESCAPE.search(value) is None:
            return '"' + value + '"'
        return _string(value)
    if t is dict:
        try:
            keys = sorted(value)
            encoded = [_PLAIN_KEYS[k] for k in keys]
        except (KeyError, TypeError):
            return _encode_object(value)
        parts = []
        for e, k in zip(encoded, keys, strict=True):
            # Strings and integers inline: one call per scalar would double the cost.
            v = value[k]
            tv = type(v)
            if tv is str and v.isascii() and _NEEDS_ESCAPE.search(v) is None:
                parts.append(e + '"' + v + '"')
            elif tv is int:
                parts.append(e + int.__repr__(v))
            else:
                parts.append(e + _encode(v))
        return "{" + ",".join(parts) + "}"
    if t is int:
        return int.__repr__(value)
    if t is list:
        return "[" + ",".join([_encode(v) for v in value]) + "]"
    return _literal(value)


# Encoded form of keys seen before that are ASCII and need no escape: they are their own
# NFC form and sort as they are, which spares the general path below for most objects.
_PLAIN_KEYS: dict[str, str] = {}


def _encode_object(value: dict[Any, Any]) -> str:
    pairs = sorted([(_nfc(k), v) for k, v in value.items()], key=_first)
    for i in range(1, len(pairs)):
        if pairs[i][0] == pairs[i - 1][0]:
            raise CanonicalError(f"two keys equal {pairs[i][0]!r} after NFC normalisation")
    for key, _ in pairs:
        if (len(_PLAIN_KEYS) < 4096 and len(key) <= 64 and key.isascii()
                and _NEEDS_ESCAPE.search(key) is None):
            _PLAIN_KEYS[key] = '"' + key + '":'
    return "{" + ",".join([_string(k) + ":" + _encode(v) for k, v in pairs]) + "}"


def _encode_plain(value: Any) -> str:
    # Every string is known to be ASCII needing no escape (see ``is_plain``): no
    # normalisation, no escaping, keys compare as they are.
    t = type(value)
    if t is str:
        return '"' + value + '"'
    if t is dict:
        return "{" + ",".join(['"' + k + '":' + _encode_plain(value[k])
                               for k in sorted(value)]) + "}"
    if t is int:
        return int.__repr__(value)
    if t is list:
        return "[" + ",".join([_encode_plain(v) for v in value]) + "]"
    return _literal(value)


def _literal(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is float:
        raise CanonicalError(f"float {value!r}: canonical JSON carries integers only")
    raise CanonicalError(f"{type(value).__name__} has no canonical JSON form")


def canonical(value: Any, *, plain: bool = False, skip: str | None = None) -> bytes:
    """Canonical bytes of ``value``; ``skip`` leaves out one top-level key (the entry hash).

    ``plain=True`` is a promise that every string is ASCII without quotes, backslashes or
    control characters, as ``is_plain`` establishes for a parsed line.
    """
    if skip is not None and type(value) is dict:
        value = {k: v for k, v in value.items() if k != skip}
    try:
        text = _encode_plain(value) if plain else _encode(value)
    except RecursionError:
        raise CanonicalError("nesting too deep") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError(f"string is not valid Unicode ({exc.reason})") from None


def entry_hash(entry: dict[str, Any], line: str | None = None, plain: bool = False
               ) -> str | None:
    """SHA-256(prev_hash bytes || canonical(entry without ``hash``)) as lowercase hex.

    ``line``: the raw line, when ``is_canonical_text`` proved it canonical; ``plain``: what
    ``is_plain`` said of it. None when ``prev_hash`` is not 64 lowercase hex digits.
    """
    prev = entry.get("prev_hash")
    if type(prev) is not str or not HEX64.fullmatch(prev):
        return None
    body = None if line is None else _without_member(line, "hash", entry.get("hash"))
    if body is None:
        body = canonical(entry, plain=plain, skip="hash")
    return hashlib.sha256(bytes.fromhex(prev) + body).hexdigest()


def _without_member(line: str, key: str, value: Any) -> bytes | None:
    """A canonical line minus its top-level ``key`` member, when that can be cut safely."""
    if type(value) is not str:
        return None
    member = f'"{key}":"{value}"'
    # Found once, it is the top-level member (a plain string cannot contain a quote).
    if line.count(member) != 1:
        return None
    start = line.index(member)
    end = start + len(member)
    if line[start - 1] == ",":
        start -= 1
    elif line[end] == ",":
        end += 1
    return (line[:start] + line[end:]).encode("ascii")


def event_digest(event: dict[str, Any], line: str | None = None, plain: bool = False
                 ) -> str | None:
    """SHA-256 of the canonical event line; None when one of its six fields is missing.

    ``line`` and ``plain`` as for ``entry_hash``.
    """
    if event.keys() != _EVENT_KEYS:
        try:
            event = {name: event[name] for name in _EVENT_FIELDS}
        except KeyError:
            return None
        line = None  # the line holds more than the six fields
    if line is not None:
        return hashlib.sha256(line.encode("ascii")).hexdigest()
    return hashlib.sha256(canonical(event, plain=plain)).hexdigest()


# The version nibble of a version-5 UUID, and the variant bits over the next hex digit.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def event_id(stream_id: Any, version: Any) -> str:
    """uuid5(EVENT_NAMESPACE, f"{stream_id}:{version}"), spelled out from RFC 9562 sec. 5.5."""
    name = f"{stream_id}:{version}".encode("utf-8", "surrogatepass")
    h = hashlib.sha1(EVENT_NAMESPACE_BYTES + name).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def event_type(topic: Any) -> str | None:
    """``Aggregate.EventName`` of a topic ``module:Aggregate.EventName`` (catalogue spelling)."""
    if type(topic) is not str or ":" not in topic:
        return None
    aggregate, dot, name = topic.partition(":")[2].partition(".")
    if not dot:
        return None
    return f"{'Request' if aggregate == 'InferenceRequest' else aggregate}.{name}"


_NOT_AUDITED = frozenset({"Request.HoldPlaced", "Request.HoldVoided", "Request.HoldExpired"})


def is_audited(kind: str | None, state: Any) -> bool:
    if kind in _NOT_AUDITED:
        return False
    if kind == "Request.HoldSettled" and type(state) is dict:
        charged = state.get("charged_micros")
        # A settlement that charged nothing moves no money (bool False is not 0 here).
        return not (type(charged) is int and charged == 0)
    return True


def z_time(stamp: Any) -> str | None:
    """An ISO 8601 time with an offset as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; None if not one."""
    if type(stamp) is not str:
        return None
    # The stored forms (msgspec's Z, isoformat's +00:00) convert without parsing; whatever
    # they yield must still equal an entry's recorded_at, which is checked to be well formed.
    if len(stamp) == 27 and stamp[26] == "Z" and stamp[19] == ".":
        return stamp
    if len(stamp) == 32 and stamp[26:] == "+00:00" and stamp[19] == ".":
        return stamp[:26] + "Z"
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return format_z(moment)


def format_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_z(text: Any) -> datetime | None:
    if type(text) is not str or not Z_TIME.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def minus(text: str, delta: timedelta) -> str:
    """``text`` (a valid Z time) moved back by ``delta``, still in the Z format."""
    moment = parse_z(text)
    assert moment is not None
    return format_z(moment - delta)
