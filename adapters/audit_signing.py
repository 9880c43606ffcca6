"""Ed25519 checkpoint signing keys, derived from the master key, never stored (11.7).

Key ``kN``'s private key is HKDF-SHA256(master key, info="gatewayz audit signing kN"): every
worker of a cluster signs alike with no key in the database, a rotation needs no new
secret to distribute, and a database operator who can read every table still cannot sign.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class AuditSigner:
    def __init__(self, master_key: bytes) -> None:
        self._master = master_key
        self._keys: dict[str, Ed25519PrivateKey] = {}

    def _private(self, key_id: str) -> Ed25519PrivateKey:
        key = self._keys.get(key_id)
        if key is None:
            seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                        info=f"gatewayz audit signing {key_id}".encode()).derive(self._master)
            key = self._keys[key_id] = Ed25519PrivateKey.from_private_bytes(seed)
        return key

    def public_key(self, key_id: str) -> tuple[str, str]:
        """(standard base64 of the raw public key, its SHA-256 fingerprint in hex)."""
        raw = self._private(key_id).public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode(), hashlib.sha256(raw).hexdigest()

    def sign(self, key_id: str, payload: bytes) -> str:
        return base64.b64encode(self._private(key_id).sign(payload)).decode()
