"""User aggregate: role, permissions and staff tokens (spec 1.4, 1.5), and the owner roster."""

from __future__ import annotations

from datetime import datetime, timedelta

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.ids import stream_uuid
from domain.permissions import CUSTOMER_ROLES, GRANTABLE, ROLES, STAFF_ROLES
from domain.reasons import reason_text

GRANTABLE_PERMISSIONS = GRANTABLE
DEFAULT_TOKEN_DAYS = 30
MAX_TOKEN_DAYS = 90


class Forbidden(DomainError):
    """The acting staff user lacks the rank for this change. A subclass, not just a code, so
    the HTTP layer can record the refusal as a security event naming ``required`` (1.4)."""

    def __init__(self, message: str, required: str = "owner") -> None:
        super().__init__("forbidden", message)
        self.required = required


class User(Aggregate):
    # Stored events are never changed: new facts get new classes below.
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

    class RoleChanged(Aggregate.Event):
        old: str
        new: str
        reason: str
        actor: str

    class PermissionRevoked(Aggregate.Event):
        permission: str
        reason: str
        actor: str

    class Deactivated(Aggregate.Event):
        reason: str
        actor: str

    class StaffTokenRevoked(Aggregate.Event):
        token_id: str
        actor: str

    @staticmethod
    def create_id(user_id: str, **_: object):
        return stream_uuid(f"user:{user_id}")

    @event(Added)
    def __init__(self, user_id: str, account_id: str | None, role: str, email_enc: str,
                 actor: str) -> None:
        self.user_id = user_id
        self.account_id = account_id
        self.role = role
        self.permissions: list[str] = []
        self.active = True
        self.tokens: dict[str, bool] = {}  # token id -> revoked

    # -- event appliers (also run on replay: no checks here) -----------------------------
    @event(PermissionGranted)
    def grant_permission(self, permission: str, reason: str, actor: str) -> None:
        if permission not in self.permissions:
            self.permissions.append(permission)

    @event(StaffTokenIssued)
    def issue_staff_token(self, token_id: str, prefix: str, last4: str, secret_hash: str,
                          expires_at: str) -> None:
        self.tokens[token_id] = False

    @event(RoleChanged)
    def _change_role(self, old: str, new: str, reason: str, actor: str) -> None:
        self.role = new

    @event(PermissionRevoked)
    def _revoke_permission(self, permission: str, reason: str, actor: str) -> None:
        if permission in self.permissions:
            self.permissions.remove(permission)

    @event(Deactivated)
    def _deactivate(self, reason: str, actor: str) -> None:
        self.active = False

    @event(StaffTokenRevoked)
    def _revoke_token(self, token_id: str, actor: str) -> None:
        self.tokens[token_id] = True

    # -- commands: checked, and silent (no event) when nothing would change ---------------
    def change_role(self, role: object, reason: object, actor: str) -> bool:
        check_role(role)
        reason_text(reason)
        self._check_active()
        if role == self.role:
            return False
        self._change_role(self.role, role, reason.strip(), actor)  # type: ignore[union-attr]
        return True

    def grant(self, permission: object, reason: object, actor: str) -> bool:
        check_permission(permission)
        reason_text(reason)
        self._check_active()
        if permission in self.permissions:
            return False
        self.grant_permission(permission, reason.strip(), actor)  # type: ignore[union-attr]
        return True

    def revoke_permission(self, permission: object, reason: object, actor: str) -> bool:
        check_permission(permission)
        reason_text(reason)
        self._check_active()
        if permission not in self.permissions:
            return False
        self._revoke_permission(permission, reason.strip(), actor)  # type: ignore[union-attr]
        return True

    def deactivate(self, reason: object, actor: str) -> bool:
        reason_text(reason)
        if not self.active:
            return False
        self._deactivate(reason.strip(), actor)  # type: ignore[union-attr]
        return True

    def issue_token(self, token_id: str, prefix: str, last4: str, secret_hash: str,
                    expires_at: datetime) -> None:
        self._check_active()
        if not self.may_hold_staff_token():
            raise DomainError("invalid_request", "staff tokens are issued only to users "
                              "holding admin, owner or a finance/audit permission",
                              param="user_id")
        self.issue_staff_token(token_id, prefix, last4, secret_hash, expires_at.isoformat())

    def revoke_token(self, token_id: str, actor: str) -> bool:
        if token_id not in self.tokens:
            raise DomainError("not_found", "no such staff token", param="token_id")
        if self.tokens[token_id] or not self.active:
            return False  # already dead: a deactivated user's tokens stopped with them
        self._revoke_token(token_id, actor)
        return True

    def may_hold_staff_token(self) -> bool:
        return self.role in STAFF_ROLES or any(p in GRANTABLE_PERMISSIONS
                                               for p in self.permissions)

    def _check_active(self) -> None:
        if not self.active:
            raise DomainError("conflict", "the user is deactivated and cannot be changed",
                              param="user_id")


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


class OwnerRoster(Aggregate):
    """The active owners, one stream. Every change that adds or removes an owner is saved
    together with an event here, so the store's optimistic concurrency on this one stream
    serialises them: two owners demoting each other at once cannot both see a second owner
    and leave none (1.4, last owner)."""

    class Seeded(Aggregate.Created):
        owner_ids: list

    class OwnerAdded(Aggregate.Event):
        user_id: str

    class OwnerRemoved(Aggregate.Event):
        user_id: str

    @staticmethod
    def create_id(**_: object):
        return stream_uuid("installation:owners")

    @event(Seeded)
    def __init__(self, owner_ids: list) -> None:
        self.owner_ids = list(owner_ids)

    @event(OwnerAdded)
    def _add(self, user_id: str) -> None:
        self.owner_ids.append(user_id)

    @event(OwnerRemoved)
    def _remove(self, user_id: str) -> None:
        self.owner_ids.remove(user_id)

    def add(self, user_id: str) -> None:
        if user_id not in self.owner_ids:
            self._add(user_id)

    def remove(self, user_id: str) -> None:
        if user_id not in self.owner_ids:
            return
        if len(self.owner_ids) <= 1:
            raise DomainError("last_owner", "the last owner cannot be demoted or deactivated")
        self._remove(user_id)


def seed_roster(user_id: str) -> OwnerRoster:
    """The roster of a fresh installation: its first owner (saved with the bootstrap)."""
    return OwnerRoster(owner_ids=[user_id])


def rank(role: str) -> int:
    check_role(role)
    return ROLES.index(role)


def check_role(role: object) -> None:
    if role not in ROLES:
        raise DomainError("invalid_request", f"role must be one of {', '.join(ROLES)}",
                          param="role")


def check_permission(permission: object) -> None:
    if permission not in GRANTABLE_PERMISSIONS:
        raise DomainError("invalid_request", "permission must be one of "
                          f"{', '.join(GRANTABLE_PERMISSIONS)}", param="permission")


def check_authority(actor_role: str, target_role: str, new_role: str) -> None:
    """1.4: an admin sets user/developer on customer users only; owners may do anything."""
    if actor_role == "owner":
        return
    if actor_role not in STAFF_ROLES:  # demoted since the token was checked
        raise Forbidden("only admins and owners manage users", required="admin")
    if target_role in CUSTOMER_ROLES and new_role in CUSTOMER_ROLES:
        return
    raise Forbidden("only an owner may grant, remove or change admin and owner users")


def token_expiry(expires_in_days: object, now: datetime) -> datetime:
    if expires_in_days is None:
        expires_in_days = DEFAULT_TOKEN_DAYS
    if not isinstance(expires_in_days, int) or isinstance(expires_in_days, bool) \
            or not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise DomainError("invalid_request", "expires_in_days must be an integer from 1 to "
                          f"{MAX_TOKEN_DAYS}", param="expires_in_days")
    return now + timedelta(days=expires_in_days)
