"""Security events (spec 11.3): each one a small stream ``security:{security_id}`` of one event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.domain import Aggregate

from domain.ids import new_id, stream_uuid

AUTH_FAILURE_REASONS = ("missing", "malformed", "unknown", "revoked", "expired")
# ip_not_allowed and referrer_not_allowed are part of the catalogue but nothing raises them
# yet: IP and referrer allowlists (1.6, 1.7) are not enforced in this version.
MISUSE_KINDS = ("ip_not_allowed", "referrer_not_allowed", "revoked_key_used",
                "expired_key_used", "rotated_key_used", "model_not_allowed", "scope_violation")
DENIAL_REASONS = ("missing_permission", "wrong_credential_type")
CREDENTIAL_KINDS = ("api_key", "staff_token")
MIXED = "*"  # a counted event whose calls hit several routes (or permissions)
_VARYING = ("route", "permission", "key_prefix")


class Security(Aggregate):
    """Never changes after it is recorded: a fact about one moment (or one minute)."""

    class AuthenticationFailed(Aggregate.Created):
        # ``count`` failures of one (client IP, reason) in the UTC minute ``window_start``;
        # the IP only as ciphertext, the presented credential never (only its display
        # prefix, when it parses as a credential at all).
        security_id: str
        reason: str
        key_prefix: str | None
        client_ip_enc: str
        route: str
        count: int
        window_start: str

    class AccessDenied(Aggregate.Created):
        # A staff token lacking a route's permission (principal known), or a credential of
        # the wrong type for the route (principal not authenticated: id None, counted per
        # client IP and minute like failed authentications).
        security_id: str
        reason: str
        principal_kind: str
        principal_id: str | None
        credential_kind: str
        key_prefix: str | None
        route: str
        permission: str
        client_ip_enc: str | None
        count: int
        window_start: str

    class KeyMisuse(Aggregate.Created):
        security_id: str
        key_id: str
        account_id: str | None
        kind: str
        route: str
        count: int
        window_start: str

    class WebhookSignatureRejected(Aggregate.Created):
        security_id: str
        source: str
        reason: str

    @staticmethod
    def create_id(security_id: str, **_: object):
        return stream_uuid(f"security:{security_id}")

    @classmethod
    def record(cls, event_class: type, **fields: Any) -> Security:
        """A new stream holding exactly one ``event_class`` event."""
        _check(event_class, fields)
        return cls._create(event_class, security_id=new_id("sec"), **fields)


def _check(event_class: type, fields: dict[str, Any]) -> None:
    allowed = {Security.AuthenticationFailed: ("reason", AUTH_FAILURE_REASONS),
               Security.AccessDenied: ("reason", DENIAL_REASONS),
               Security.KeyMisuse: ("kind", MISUSE_KINDS)}.get(event_class)
    if allowed is not None and fields.get(allowed[0]) not in allowed[1]:
        raise ValueError(f"{event_class.__qualname__}: {allowed[0]} must be one of {allowed[1]}")
    if int(fields.get("count", 1)) < 1:
        raise ValueError("count must be at least 1")


@dataclass
class Tally:
    """Calls of one minute counted into one event (failed authentications, misused keys)."""

    event_class: type
    fields: dict[str, Any]
    actor: Any  # who the counted event is recorded as
    pending: int = 0  # counted, not yet recorded

    def add(self, fields: dict[str, Any]) -> None:
        """Count one more call. The counted event describes only the calls it counts: the
        first of them sets route, permission and key prefix; one that differs marks a field
        mixed ("*"; a mixed prefix is dropped)."""
        for name in _VARYING:
            if name not in self.fields:
                continue
            if not self.pending:
                self.fields[name] = fields.get(name)
            elif self.fields[name] != fields.get(name):
                self.fields[name] = None if name == "key_prefix" else MIXED
        self.pending += 1


def window_start(minute: int) -> str:
    """The UTC minute number ``minute`` (epoch seconds // 60) as an event time."""
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
