"""Stored Responses in the read-model database, content under the account's data key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from application.ports import Clock

_encode = msgspec.json.encode
_decode = msgspec.json.Decoder().decode


class SqlResponseStore:
    def __init__(self, db: Any, keys: Any, clock: Clock) -> None:
        self.db = db
        self.keys = keys  # adapters.data_keys.DataKeyStore
        self.clock = clock

    def save(self, account_id: str, response_id: str, record: dict, expires: datetime) -> None:
        content = self.keys.encrypt(_encode(record).decode(), account_id)
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO stored_responses (response_id, account_id, created_at, "
                        "expires_at, content) VALUES (%s, %s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
                        (response_id, account_id, self._stamp(self.clock.now()),
                         self._stamp(expires), content))

    def get(self, account_id: str, response_id: str) -> dict | None:
        """The record, or None when absent, expired, another account's or erased."""
        with self.db.transaction() as cur:
            cur.execute("SELECT content FROM stored_responses WHERE response_id = %s AND "
                        "account_id = %s AND expires_at > %s",
                        (response_id, account_id, self._stamp(self.clock.now())))
            row = cur.fetchone()
        if row is None:
            return None
        plain = self.keys.decrypt(row[0], account_id)
        if not plain.startswith("{"):  # "[erased]"
            return None
        return _decode(plain)

    def delete(self, account_id: str, response_id: str) -> bool:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM stored_responses WHERE response_id = %s AND "
                        "account_id = %s", (response_id, account_id))
            return cur.rowcount == 1

    def purge_expired(self) -> int:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM stored_responses WHERE expires_at <= %s",
                        (self._stamp(self.clock.now()),))
            return cur.rowcount

    @staticmethod
    def _stamp(moment: datetime) -> str:
        return moment.isoformat(timespec="microseconds")
