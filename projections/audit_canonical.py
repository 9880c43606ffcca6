"""The writer's canonical bytes and entry hash of the audit chain (11.6).

The verifier (``entrypoints/audit_verifier.py``) has its own implementation on purpose: a bug
shared by writer and verifier would hide itself. Both are held to the published golden
vectors (``tests/audit/golden_vectors.json``).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Any

GENESIS = "0" * 64


def _normal(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {unicodedata.normalize("NFC", k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, float):
        raise TypeError("audit entries hold integers only, never floats")
    return value


def canonical(value: Any) -> bytes:
    """Sorted keys (code point order), no whitespace, NFC strings, UTF-8, integers only.

    json.dumps escapes exactly the characters the format names (quote, backslash, control
    characters, lowercase \\u00xx) and writes everything else literally with
    ensure_ascii=False.
    """
    return json.dumps(_normal(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    """SHA-256 of the previous hash's bytes then the entry's canonical bytes (no ``hash``)."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical(body)).hexdigest()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()
