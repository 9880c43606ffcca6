"""Secrets at rest: the key pepper, a master key, AES-GCM for personal data and credentials."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def load_or_create_secret(path: Path, size: int = 32) -> bytes:
    """Read a secret file, creating it (mode 0600) on first start of an embedded node."""
    if path.exists():
        data = path.read_bytes()
        if len(data) < 32:
            raise SystemExit(f"{path} holds fewer than 32 bytes; refusing to start")
        return data
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = secrets.token_bytes(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return data


class SecretBox:
    """AES-256-GCM with a random nonce; ciphertext is ``v1:`` + base64url(nonce + data)."""

    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(master_key[:32])

    def encrypt(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        data = self._aead.encrypt(nonce, plaintext.encode(), None)
        return "v1:" + base64.urlsafe_b64encode(nonce + data).decode()

    def decrypt(self, ciphertext: str) -> str:
        raw = base64.urlsafe_b64decode(ciphertext.removeprefix("v1:"))
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()

    def wrap(self, key: bytes, context: str) -> str:
        """Encrypt a data key; ``context`` (e.g. the account id) is bound as associated
        data, so a wrapped key copied onto another row fails to unwrap there."""
        nonce = secrets.token_bytes(12)
        data = self._aead.encrypt(nonce, key, context.encode())
        return "k1:" + base64.urlsafe_b64encode(nonce + data).decode()

    def unwrap(self, wrapped: str, context: str) -> bytes:
        raw = base64.urlsafe_b64decode(wrapped.removeprefix("k1:"))
        return self._aead.decrypt(raw[:12], raw[12:], context.encode())


class SqlSecretVault:
    """Provider credentials, encrypted, outside the event store (events carry last 4 only)."""

    def __init__(self, db, box: SecretBox) -> None:
        self.db = db
        self.box = box
        # Decrypted once per provider, not once per request; rotation replaces the entry.
        self._plain: dict[str, str] = {}

    def put(self, slug: str, secret: str) -> None:
        self._plain.pop(slug, None)
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO provider_secrets (slug, ciphertext) VALUES (%s, %s) "
                        "ON CONFLICT (slug) DO UPDATE SET ciphertext = excluded.ciphertext",
                        (slug, self.box.encrypt(secret)))

    def get(self, slug: str) -> str:
        cached = self._plain.get(slug)
        if cached is not None:
            return cached
        with self.db.transaction() as cur:
            cur.execute("SELECT ciphertext FROM provider_secrets WHERE slug = %s", (slug,))
            row = cur.fetchone()
        plain = self.box.decrypt(row[0]) if row else ""
        self._plain[slug] = plain
        return plain
