"""User aggregate: role, permissions and staff tokens (spec 1.4, 1.5)."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_uuid

GRANTABLE_PERMISSIONS = ("finance:read", "audit:read", "audit:verify")


class User(Aggregate):
    class Added(Aggregate.Created):
        user_id: str
        account_id: str | None
        role: str
        email_enc: str
        actor: str

    class PermissionGranted(Aggregate.Event):
        permission: str
        reason: str
        actor: str

    class StaffTokenIssued(Aggregate.Event):
        token_id: str
        prefix: str
        last4: str
        secret_hash: str
        expires_at: str

    @staticmethod
    def create_id(user_id: str, **_: object):
        return stream_uuid(f"user:{user_id}")

    @event(Added)
    def __init__(self, user_id: str, account_id: str | None, role: str, email_enc: str,
                 actor: str) -> None:
        self.user_id = user_id
        self.role = role
        self.permissions: list[str] = []

    @event(PermissionGranted)
    def grant_permission(self, permission: str, reason: str, actor: str) -> None:
        if permission not in self.permissions:
            self.permissions.append(permission)

    @event(StaffTokenIssued)
    def issue_staff_token(self, token_id: str, prefix: str, last4: str, secret_hash: str,
                          expires_at: str) -> None:
        pass


class OwnerBootstrap(Aggregate):
    """A singleton stream: its creation is the claim that the first owner exists."""

    class Bootstrapped(Aggregate.Created):
        user_id: str

    @staticmethod
    def create_id(**_: object):
        return stream_uuid("installation:owner")

    @event(Bootstrapped)
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
