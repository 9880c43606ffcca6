"""Audit: the checkpoint signing keys, one small stream per key (11.7)."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_uuid


class Audit(Aggregate):
    """A signing key coming into use. Key ids are ``k1``, ``k2``, ... so two workers that
    rotate at once collide on the same new stream instead of both succeeding."""

    class SigningKeyRotated(Aggregate.Created):
        old_key_id: str | None
        new_key_id: str
        public_key: str  # standard base64 of the raw Ed25519 public key
        public_key_fingerprint: str  # SHA-256 hex of the raw public key

    @staticmethod
    def create_id(new_key_id: str, **_: object):
        return stream_uuid(f"audit:{new_key_id}")

    @event(SigningKeyRotated)
    def __init__(self, old_key_id: str | None, new_key_id: str, public_key: str,
                 public_key_fingerprint: str) -> None:
        self.new_key_id = new_key_id
