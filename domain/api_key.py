"""ApiKey aggregate: issue, rotate with a grace period, revoke, expire (spec 1.1, 1.3)."""

from __future__ import annotations

from datetime import datetime, timedelta

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.ids import stream_uuid

MAX_GRACE_SECONDS = 604_800
DEFAULT_GRACE_SECONDS = 86_400


class ApiKey(Aggregate):
    class Issued(Aggregate.Created):
        key_id: str
        account_id: str
        name: str
        environment: str
        prefix: str
        last4: str
        secret_hash: str
        scopes: list
        expires_at: str | None
        max_requests: int | None
        allowed_models: list
        created_by: str

    class Rotated(Aggregate.Event):
        prefix: str
        last4: str
        secret_hash: str
        previous_secret_hash: str
        previous_valid_until: str
        actor: str

    class Revoked(Aggregate.Event):
        reason: str
        actor: str

    @staticmethod
    def create_id(key_id: str, **_: object):
        return stream_uuid(f"key:{key_id}")

    @event(Issued)
    def __init__(self, key_id: str, account_id: str, name: str, environment: str, prefix: str,
                 last4: str, secret_hash: str, scopes: list, expires_at: str | None,
                 max_requests: int | None, allowed_models: list, created_by: str) -> None:
        self.key_id = key_id
        self.account_id = account_id
        self.environment = environment
        self.secret_hash = secret_hash
        self.revoked = False

    @event(Rotated)
    def _rotate(self, prefix: str, last4: str, secret_hash: str, previous_secret_hash: str,
                previous_valid_until: str, actor: str) -> None:
        self.secret_hash = secret_hash

    def rotate(self, prefix: str, last4: str, secret_hash: str, grace_seconds: int,
               now: datetime, actor: str) -> None:
        """New secret, same id; the old one stays valid for the grace period.

        Only the immediately previous secret keeps a grace window, so at most two secrets
        are ever valid: a second rotation ends the older one at once.
        """
        if self.revoked:
            raise DomainError("api_key_revoked", "a revoked key cannot be rotated")
        check_grace(grace_seconds)
        until = now + timedelta(seconds=grace_seconds)
        self._rotate(prefix, last4, secret_hash, self.secret_hash, until.isoformat(), actor)

    @event(Revoked)
    def _revoke(self, reason: str, actor: str) -> None:
        self.revoked = True

    def revoke(self, reason: str, actor: str) -> bool:
        if self.revoked:
            return False
        self._revoke(reason, actor)
        return True


def check_grace(grace_seconds: object) -> None:
    if (not isinstance(grace_seconds, int) or isinstance(grace_seconds, bool)
            or not 0 <= grace_seconds <= MAX_GRACE_SECONDS):
        raise DomainError("invalid_request",
                          f"grace_seconds must be an integer from 0 to {MAX_GRACE_SECONDS}",
                          param="grace_seconds")
