"""ApiKey aggregate: issue, rotate with a grace period, revoke, change settings, expire
(spec 1.1, 1.3)."""

from __future__ import annotations

import copy
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

    class SettingsChanged(Aggregate.Event):
        """A PATCH (1.3): the spec's catalogue name; each change is {field, old, new}."""

        changes: list
        actor: str

    class Expired(Aggregate.Event):
        """The scheduler saw expires_at pass; expired_at is that instant, not the sweep's."""

        expired_at: str

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
        self.expired = False
        # The writable settings (domain/key_settings.py WRITABLE), so a PATCH's change list
        # is computed from the aggregate's own history; the rest start empty, as Issued has
        # no field for them (older stored events must still load).
        self.settings: dict = {
            "name": name, "scopes": list(scopes), "expires_at": expires_at,
            "max_requests": max_requests, "ip_allowlist": [], "referrer_allowlist": [],
            "allowed_models": list(allowed_models), "labels": {}, "rate_limits": {}}

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

    @event(SettingsChanged)
    def _change_settings(self, changes: list, actor: str) -> None:
        for change in changes:
            # A copy: state must not share lists with the stored event.
            self.settings[change["field"]] = copy.deepcopy(change["new"])

    def update(self, changes: list[dict], actor: str, now: datetime | None = None) -> bool:
        """Record a PATCH's changes (already validated); False, and no event, when none.

        A revoked key is final (1.3). So is an expired one: its expiry event may already be
        recorded, and a PATCH must not bring it back by moving expires_at.
        """
        if self.revoked:
            raise DomainError("api_key_revoked", "a revoked key cannot be changed")
        if self.expired or (now is not None and self.expires_before(now)):
            raise DomainError("api_key_expired", "an expired key cannot be changed")
        for change in changes:
            if change.get("field") not in self.settings:
                raise DomainError("invalid_request", f"{change.get('field')!r} is not a "
                                  "setting of a key", param=str(change.get("field")))
        if not changes:
            return False
        self._change_settings(copy.deepcopy(changes), actor)
        return True

    def expires_before(self, now: datetime) -> bool:
        """True once expires_at has passed (1.3: "expire exactly at expires_at")."""
        at = self.settings["expires_at"]
        return at is not None and datetime.fromisoformat(at) <= now

    @event(Expired)
    def _expire(self, expired_at: str) -> None:
        self.expired = True

    def expire(self, now: datetime) -> bool:
        """Record the expiry once, for a key not revoked whose expires_at has passed."""
        if self.revoked or self.expired or not self.expires_before(now):
            return False
        self._expire(self.settings["expires_at"])
        return True


def check_grace(grace_seconds: object) -> None:
    if (not isinstance(grace_seconds, int) or isinstance(grace_seconds, bool)
            or not 0 <= grace_seconds <= MAX_GRACE_SECONDS):
        raise DomainError("invalid_request",
                          f"grace_seconds must be an integer from 0 to {MAX_GRACE_SECONDS}",
                          param="grace_seconds")
