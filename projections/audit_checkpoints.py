"""Signed checkpoints of the audit chain (11.7): noted, signed, exported, keys rotated.

The chain writer notes a checkpoint every 1,000 entries in its own transaction. This
service adds the rest: a checkpoint when the oldest unchecked entry is an hour old, one at
shutdown, the signature (with a key derived outside the database), export to an
append-only directory, and key rotation as an audited ``Audit.SigningKeyRotated`` event.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError

from domain.audit import Audit
from projections.audit_canonical import GENESIS, canonical
from projections.audit_keys import AuditKeyQueries
from projections.base import stamp

log = logging.getLogger("gatewayz.audit")
HOURLY = timedelta(hours=1)


class AuditCheckpoints:
    def __init__(self, db: Any, access_app: Any, signer: Any, clock: Any,
                 wait: Callable[[str, int], bool], sink: Path | None) -> None:
        self.db, self.app, self.signer, self.clock = db, access_app, signer, clock
        self.wait = wait
        self.sink = sink
        self.keys = AuditKeyQueries(db)

    # -- keys -------------------------------------------------------------------------------
    def ensure_key(self) -> None:
        if not self.keys.keys():
            self.rotate()

    def rotate(self) -> str:
        """Start signing with a new key; the old one stays valid for what it signed."""
        current = self.keys.keys()
        old = current[-1]["key_id"] if current else None
        new = f"k{len(current) + 1}"
        public, fingerprint = self.signer.public_key(new)
        try:
            saved = self.app.save(Audit(old_key_id=old, new_key_id=new, public_key=public,
                                        public_key_fingerprint=fingerprint))
            self.wait("access", saved[-1].notification.id)
        except IntegrityError:
            log.info("signing key %s was created by another worker", new)
        return new

    # -- checkpoints ------------------------------------------------------------------------
    def note(self, force: bool = False) -> int | None:
        """Note a checkpoint at the chain's head when forced (shutdown, an owner's command)
        or when the oldest entry it would cover is an hour old."""
        cutoff = stamp(self.clock.now() - HOURLY)
        with self.db.transaction() as cur:
            if self.db.dialect == "postgres":
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || "
                            "':audit-chain'))")
            cur.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints")
            last = cur.fetchone()[0]
            cur.execute("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
            head = cur.fetchone()
            if head is None or head[0] <= last:
                return None
            if not force:
                cur.execute("SELECT recorded_at FROM audit_entries WHERE seq = %s", (last + 1,))
                if cur.fetchone()[0] > cutoff:
                    return None
            cur.execute("INSERT INTO audit_checkpoints (seq, head_hash, previous_seq) "
                        "VALUES (%s, %s, %s)", (head[0], head[1], last))
            return head[0]

    def sign_pending(self) -> int:
        """Sign every noted checkpoint not signed yet, in order, and export each."""
        signed = 0
        with self.db.transaction() as cur:
            cur.execute("SELECT seq, head_hash, previous_seq FROM audit_checkpoints "
                        "WHERE signature IS NULL ORDER BY seq")
            pending = cur.fetchall()
        for seq, head_hash, previous_seq in pending:
            created_at = stamp(self.clock.now())
            key_id = self.keys.key_at(created_at)
            if key_id is None:
                self.ensure_key()
                created_at = stamp(self.clock.now())
                key_id = self.keys.key_at(created_at)
            if key_id is None:
                # Another worker made the key and this read model has not seen it yet: the
                # checkpoint stays noted and is signed on a later pass.
                log.info("no signing key visible yet; checkpoint %s waits", seq)
                break
            with self.db.transaction() as cur:
                previous_hash = GENESIS
                if previous_seq:
                    cur.execute("SELECT head_hash FROM audit_checkpoints WHERE seq = %s",
                                (previous_seq,))
                    previous_hash = cur.fetchone()[0]
                body = {"seq": seq, "head_hash": head_hash,
                        "previous_checkpoint_seq": previous_seq,
                        "previous_checkpoint_hash": previous_hash,
                        "created_at": created_at, "key_id": key_id}
                signature = self.signer.sign(key_id, canonical(body))
                cur.execute("UPDATE audit_checkpoints SET created_at = %s, key_id = %s, "
                            "body = %s, signature = %s WHERE seq = %s AND signature IS NULL",
                            (created_at, key_id, canonical(body).decode(), signature, seq))
                # Another worker may have signed it first: export what the table holds.
                cur.execute("SELECT body, signature FROM audit_checkpoints WHERE seq = %s",
                            (seq,))
                stored_body, stored_signature = cur.fetchone()
            self._export(stored_body, stored_signature)
            signed += 1
        return signed

    def tick(self) -> None:
        """The hourly rule and signing; run by each worker's maintenance sweep."""
        self.note()
        self.sign_pending()

    def shutdown(self) -> None:
        self.note(force=True)
        self.sign_pending()

    def _export(self, body: str, signature: str) -> None:
        """Write the checkpoint to the append-only sink: a file is created once, never
        overwritten, and left read-only."""
        if self.sink is None:
            return
        self.sink.mkdir(parents=True, exist_ok=True, mode=0o700)
        checkpoint = json.loads(body)
        path = self.sink / f"{checkpoint['seq']:012d}.json"
        line = canonical({"checkpoint": checkpoint, "signature": signature})
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)  # owner-only
        except FileExistsError:
            return
        with os.fdopen(fd, "wb") as handle:
            handle.write(line + b"\n")
