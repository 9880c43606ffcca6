"""Checkpoints and public keys of an audit bundle: parsing, signatures and links (11.7, 11.8)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from entrypoints.audit_verifier_canonical import (
    HEX64,
    ZERO_HASH,
    CanonicalError,
    canonical,
    parse_z,
)
from entrypoints.audit_verifier_lines import BundleJSONError, LineParser, is_plain, loads


class Unverifiable(Exception):
    """The bundle cannot be verified at all (exit 2): unreadable, malformed or incomplete."""


@dataclass(frozen=True)
class Failure:
    """The first failing ``seq``, the check that failed (see ``CHECKS``) and why."""

    seq: int
    check: str
    detail: str


# Check names in the order of spec 11.8; at one seq the lower number is reported first.
CHECKS = {"entry_hash": 1, "chain_link": 2, "checkpoint_signature": 3, "checkpoint_link": 4,
          "checkpoint_extends": 5, "event_match": 6, "checkpoint_gap": 7}


def earliest(*failures: Failure | None) -> Failure | None:
    present = [f for f in failures if f is not None]
    return min(present, key=lambda f: (f.seq, CHECKS[f.check])) if present else None


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    previous_seq: int
    previous_hash: str
    created_at: str
    key_id: str
    body: dict[str, Any]
    signature: str


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    algorithm: str
    key: Ed25519PublicKey | None
    valid_from: str
    valid_until: str | None

    def covers(self, moment: str) -> bool:
        # Z times of one fixed width compare correctly as strings.
        return self.valid_from <= moment and (self.valid_until is None
                                              or moment < self.valid_until)


def parse_record(record: Any, where: str, parser: LineParser | None = None
                 ) -> tuple[dict[str, Any], str | None, bool]:
    """A bundle record given as a raw JSON line or as an already parsed object.

    Returns the object, the raw line when ``parser`` proved it canonical (else None), and
    whether all its strings are plain (``is_plain``).
    """
    if isinstance(record, str):
        try:
            if parser is None:
                parsed, line, plain = loads(record), None, is_plain(record)
            else:
                parsed, line, plain = parser.parse(record)
        except BundleJSONError as exc:
            raise Unverifiable(f"{where}: {exc}") from None
    else:
        parsed, line, plain = record, None, False
    if type(parsed) is not dict:
        raise Unverifiable(f"{where}: not a JSON object")
    return parsed, line, plain


def _field(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = obj.get(name)
    if type(value) is not kind:
        raise Unverifiable(f"{where}: field {name!r} is missing or not a {kind.__name__}")
    return value


def _z_field(obj: dict[str, Any], name: str, where: str) -> str:
    value = _field(obj, name, str, where)
    if parse_z(value) is None:
        raise Unverifiable(f"{where}: {name!r} is not a YYYY-MM-DDTHH:MM:SS.ffffffZ time")
    return value


def _hex_field(obj: dict[str, Any], name: str, where: str) -> str:
    value = _field(obj, name, str, where)
    if not HEX64.fullmatch(value):
        raise Unverifiable(f"{where}: {name!r} is not 64 lowercase hex digits")
    return value


def parse_checkpoints(records: list[Any]) -> list[Checkpoint]:
    """Checkpoints sorted by seq; exact duplicates (one export seen twice) count once."""
    found: dict[tuple[bytes, str], Checkpoint] = {}
    for number, record in enumerate(records, 1):
        where = f"checkpoint {number}"
        outer = parse_record(record, where)[0]
        body = _field(outer, "checkpoint", dict, where)
        seq = _field(body, "seq", int, where)
        previous_seq = _field(body, "previous_checkpoint_seq", int, where)
        if seq < 1 or previous_seq < 0:
            raise Unverifiable(f"{where}: seq must be >= 1 and previous_checkpoint_seq >= 0")
        checkpoint = Checkpoint(
            seq=seq, head_hash=_hex_field(body, "head_hash", where), previous_seq=previous_seq,
            previous_hash=_hex_field(body, "previous_checkpoint_hash", where),
            created_at=_z_field(body, "created_at", where),
            key_id=_field(body, "key_id", str, where), body=body,
            signature=_field(outer, "signature", str, where))
        try:
            identity = (canonical(body), checkpoint.signature)
        except CanonicalError as exc:
            raise Unverifiable(f"{where}: {exc}") from None
        found.setdefault(identity, checkpoint)
    return sorted(found.values(), key=lambda c: c.seq)


def parse_public_keys(document: Any) -> list[PublicKey]:
    if type(document) is not dict or type(document.get("keys")) is not list:
        raise Unverifiable('public keys: expected {"keys": [...]}')
    keys = []
    for number, item in enumerate(document["keys"], 1):
        where = f"public key {number}"
        if type(item) is not dict:
            raise Unverifiable(f"{where}: not a JSON object")
        algorithm = _field(item, "algorithm", str, where)
        key = None
        if algorithm == "ed25519":
            try:
                raw = base64.b64decode(_field(item, "public_key", str, where), validate=True)
                key = Ed25519PublicKey.from_public_bytes(raw)
            except (binascii.Error, ValueError):
                raise Unverifiable(f"{where}: public_key is not base64 of 32 bytes") from None
        until = item.get("valid_until")
        keys.append(PublicKey(
            key_id=_field(item, "key_id", str, where), algorithm=algorithm, key=key,
            valid_from=_z_field(item, "valid_from", where),
            valid_until=None if until is None else _z_field(item, "valid_until", where)))
    return keys


def check_signature(checkpoint: Checkpoint, keys: list[PublicKey]) -> Failure | None:
    """Check 3: a valid Ed25519 signature by a key with this id, valid at ``created_at``."""
    candidates = [k for k in keys if k.key_id == checkpoint.key_id and k.covers(checkpoint.created_at)]
    if not candidates:
        return Failure(checkpoint.seq, "checkpoint_signature",
                       f"no public key {checkpoint.key_id!r} valid at {checkpoint.created_at}")
    usable = [k.key for k in candidates if k.key is not None]
    if not usable:
        # An HMAC-signed checkpoint (11.7) needs the shared secret, which an auditor lacks.
        raise Unverifiable(f"checkpoint {checkpoint.seq}: key {checkpoint.key_id!r} is "
                           f"{candidates[0].algorithm}, not ed25519; it cannot be verified "
                           "with public keys")
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != 64:
        return Failure(checkpoint.seq, "checkpoint_signature",
                       "signature is not standard base64 of 64 bytes")
    message = canonical(checkpoint.body)
    for key in usable:
        try:
            key.verify(signature, message)
            return None
        except InvalidSignature:
            continue
    return Failure(checkpoint.seq, "checkpoint_signature",
                   f"signature does not verify under key {checkpoint.key_id!r}")


def check_links(checkpoints: list[Checkpoint]) -> Failure | None:
    """Check 4, first half: each checkpoint names the one before it (the first names 0)."""
    previous_seq, previous_hash, previous_time = 0, ZERO_HASH, ""
    for checkpoint in checkpoints:
        if (checkpoint.previous_seq, checkpoint.previous_hash) != (previous_seq, previous_hash):
            return Failure(checkpoint.seq, "checkpoint_link",
                           f"links to checkpoint {checkpoint.previous_seq} "
                           f"({checkpoint.previous_hash[:16]}...), but the previous checkpoint "
                           f"is {previous_seq} ({previous_hash[:16]}...)")
        if checkpoint.created_at < previous_time:
            return Failure(checkpoint.seq, "checkpoint_link",
                           f"created at {checkpoint.created_at}, before the previous "
                           f"checkpoint ({previous_time})")
        previous_seq, previous_hash = checkpoint.seq, checkpoint.head_hash
        previous_time = checkpoint.created_at
    return None


def check_checkpoints(checkpoints: list[Checkpoint], keys: list[PublicKey]) -> Failure | None:
    """Checks 3 and the link half of 4, which need no entries; the earliest failure."""
    first = None
    for checkpoint in checkpoints:
        first = earliest(first, check_signature(checkpoint, keys))
    return earliest(first, check_links(checkpoints))
