"""Per-account data keys (10.5, 11.12): personal fields encrypted so an account can be erased.

Every account gets a random 256-bit data key, stored in ``account_data_keys`` wrapped by the
master key (``SecretBox.wrap``, AES-GCM with the account id as associated data). Personal
fields are ``v2:<account_id>:<base64url(nonce + ciphertext)>``, AES-256-GCM under that key
with the account id as associated data (a value moved to another account fails to decrypt).
Erasure destroys the wrapped key: the events keep their ciphertext (hashes stay valid) and
every field of the account reads ``"[erased]"``.

Staff users who belong to no account are keyed by their user id in the same table.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from datetime import UTC
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.secret_box import SecretBox
from domain.errors import DomainError

ERASED = "[erased]"
# Another worker's erasure is honoured here within this time (the same bound as key
# revocation, 1.2); within this process it is immediate (``forget``).
CACHE_SECONDS = 1.0
CACHE_MAX = 10_000
_GONE = b""  # cached state of a destroyed key: erasure is permanent, so it never expires


class MissingDataKey(LookupError):
    """A ``v2`` value whose key row does not exist: never written that way (the key is
    committed before any event uses it), so the table was tampered with or restored alone."""


def destroy_key(cur: Any, account_id: str, at: str) -> None:
    """Destroy (or tombstone, for an account that never had one) the account's key.

    Idempotent: the first ``destroyed_at`` is kept. A tombstone row is what makes an older
    account's master-key (``v1``) values read ``"[erased]"`` too.
    """
    cur.execute("INSERT INTO account_data_keys (account_id, wrapped_key, created_at, "
                "destroyed_at) VALUES (%s, NULL, %s, %s) ON CONFLICT (account_id) DO UPDATE "
                "SET wrapped_key = NULL, destroyed_at = "
                "COALESCE(account_data_keys.destroyed_at, excluded.destroyed_at)",
                (account_id, at, at))


class DataKeyStore:
    """Implements the personal-data cipher port with per-account keys (and erasure)."""

    def __init__(self, db: Any, box: SecretBox, clock: Any) -> None:
        self.db = db
        self.box = box  # the master key: wraps data keys, still reads older v1 values
        self.clock = clock
        self._lock = threading.Lock()
        # account_id -> (monotonic time, unwrapped key | _GONE | None for "no row")
        self._cache: dict[str, tuple[float, bytes | None]] = {}

    # -- the cipher port ------------------------------------------------------------------
    def encrypt(self, plaintext: str, account_id: str) -> str:
        """Encrypt under the account's key, creating the key first if it has none.

        The key row is committed here, before the caller saves the event that will carry
        this ciphertext: a crash in between leaves a key no event uses (harmless), never an
        event whose key does not exist.
        """
        key = self._key(account_id, create=True)
        if not key:
            raise DomainError("already_erased", "this account has been erased",
                              param="account_id")
        nonce = secrets.token_bytes(12)
        data = AESGCM(key).encrypt(nonce, plaintext.encode(), account_id.encode())
        return f"v2:{account_id}:" + base64.urlsafe_b64encode(nonce + data).decode()

    def decrypt(self, ciphertext: str, account_id: str | None = None) -> str:
        """The plaintext, or ``"[erased]"`` once the owning account was erased.

        ``account_id`` is needed only for older ``v1`` values, which do not name their
        account. Policy: a ``v1`` value of an erased account reads ``"[erased]"`` as well,
        although the master key that encrypted it cannot be destroyed (it wraps every other
        key); such values remain technically recoverable by whoever holds the master key
        and the events, which is why new values are never written as ``v1``.
        """
        if ciphertext.startswith("v2:"):
            owner, payload = ciphertext[3:].rsplit(":", 1)
            if account_id is not None and account_id != owner:
                raise ValueError("this value belongs to another account")
            key = self._key(owner, create=False)
            if key is None:
                raise MissingDataKey(f"no data key for {owner}")
            if key == _GONE:
                return ERASED
            raw = base64.urlsafe_b64decode(payload)
            return AESGCM(key).decrypt(raw[:12], raw[12:], owner.encode()).decode()
        if account_id is not None and self._key(account_id, create=False) == _GONE:
            return ERASED
        return self.box.decrypt(ciphertext)

    # -- erasure --------------------------------------------------------------------------
    def destroy(self, account_id: str) -> None:
        with self.db.transaction() as cur:
            destroy_key(cur, account_id, self._now())
        self.forget(account_id)

    def is_destroyed(self, account_id: str) -> bool:
        return self._key(account_id, create=False) == _GONE

    def forget(self, account_id: str) -> None:
        with self._lock:
            self._cache.pop(account_id, None)

    # -- keys -----------------------------------------------------------------------------
    def _key(self, account_id: str, create: bool) -> bytes | None:
        with self._lock:
            hit = self._cache.get(account_id)
        now = time.monotonic()
        if hit is not None and (hit[1] == _GONE or now - hit[0] < CACHE_SECONDS) \
                and (hit[1] is not None or not create):
            return hit[1]
        key = self._load(account_id, create)
        with self._lock:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()  # bounded; a miss costs one indexed read
            self._cache[account_id] = (now, key)
        return key

    def _load(self, account_id: str, create: bool) -> bytes | None:
        with self.db.transaction() as cur:
            row = self._row(cur, account_id)
            if row is None and create:
                wrapped = self.box.wrap(secrets.token_bytes(32), _context(account_id))
                # DO NOTHING: a concurrent creator (or erasure) may have won; re-read theirs.
                cur.execute("INSERT INTO account_data_keys (account_id, wrapped_key, "
                            "created_at, destroyed_at) VALUES (%s, %s, %s, NULL) "
                            "ON CONFLICT (account_id) DO NOTHING",
                            (account_id, wrapped, self._now()))
                row = self._row(cur, account_id)
        if row is None:
            return None
        wrapped, destroyed_at = row
        if destroyed_at is not None or wrapped is None:
            return _GONE
        return self.box.unwrap(wrapped, _context(account_id))

    @staticmethod
    def _row(cur: Any, account_id: str) -> tuple | None:
        cur.execute("SELECT wrapped_key, destroyed_at FROM account_data_keys "
                    "WHERE account_id = %s", (account_id,))
        return cur.fetchone()

    def _now(self) -> str:
        # The projections' fixed-width UTC form, so both writers' stamps sort alike.
        return self.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _context(account_id: str) -> str:
    return f"gatewayz-data-key:{account_id}"
