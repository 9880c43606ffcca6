"""Checkpoint public keys with their validity windows, from ``Audit.SigningKeyRotated``."""

from __future__ import annotations

from typing import Any

from projections.base import BatchEffects, at, event_type


class AuditKeysProjection:
    name = "audit_keys"
    contexts = ("access",)

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        if event_type(event) != "Audit.SigningKeyRotated":
            return
        since = at(event)
        if event.old_key_id:
            cur.execute("UPDATE audit_signing_keys SET valid_until = %s "
                        "WHERE key_id = %s AND valid_until IS NULL", (since, event.old_key_id))
        cur.execute("INSERT INTO audit_signing_keys (key_id, algorithm, public_key, "
                    "fingerprint, valid_from) VALUES (%s, 'ed25519', %s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (event.new_key_id, event.public_key, event.public_key_fingerprint, since))


class AuditKeyQueries:
    def __init__(self, db: Any) -> None:
        self.db = db

    def keys(self) -> list[dict[str, Any]]:
        with self.db.transaction() as cur:
            cur.execute("SELECT key_id, algorithm, public_key, fingerprint, valid_from, "
                        "valid_until FROM audit_signing_keys ORDER BY valid_from, key_id")
            rows = cur.fetchall()
        return [{"key_id": r[0], "algorithm": r[1], "public_key": r[2], "fingerprint": r[3],
                 "valid_from": r[4], "valid_until": r[5]} for r in rows]

    def key_at(self, moment: str) -> str | None:
        """The key whose window holds ``moment`` (times are fixed-width UTC text)."""
        for key in reversed(self.keys()):
            if key["valid_from"] <= moment and (key["valid_until"] is None
                                                or moment < key["valid_until"]):
                return key["key_id"]
        return None
