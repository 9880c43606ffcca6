"""Staff users: add users, change roles, grant permissions, deactivate, staff tokens (1.4, 1.5).

Every command checks the acting staff user's *current* role from the event store (not the
token's possibly 1 s old view), inside the retried load-decide-save, so a retry after a
conflict decides again on fresh state. A change that adds or removes an owner is saved with
the owner roster in one save; the roster's version is what serialises such changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from eventsourcing.application import AggregateNotFoundError

from application.accounts import EMAIL, load_account
from application.erasure import PersonalDataKeys
from application.event_stores import EventStores
from application.ports import Clock
from application.principals import StaffPrincipal
from application.retry import with_retry
from domain.errors import DomainError
from domain.ids import new_id
from domain.key_format import display_prefix, generate_staff_token, last4, secret_hash
from domain.reasons import reason_text
from domain.user import (
    STAFF_ROLES,
    Forbidden,
    OwnerBootstrap,
    OwnerRoster,
    User,
    check_authority,
    check_role,
    token_expiry,
)


class StaffReader(Protocol):
    def user_view(self, user_id: str) -> dict | None: ...
    def tokens_of(self, user_id: str) -> list[dict]: ...
    def staff_token_owner(self, token_id: str) -> str | None: ...


@dataclass(frozen=True)
class IssuedStaffToken:
    token_id: str
    user_id: str
    secret: str  # shown once, never stored
    prefix: str
    last4: str
    expires_at: str


class StaffService:
    def __init__(self, stores: EventStores, reader: StaffReader, pepper: bytes,
                 cipher: PersonalDataKeys, clock: Clock,
                 wait: Callable[[str, int], Any]) -> None:
        self.app = stores.access
        self.accounts = stores.accounts
        self.reader = reader
        self.pepper = pepper
        self.cipher = cipher
        self.clock = clock
        self.wait = wait

    # -- reads ----------------------------------------------------------------------------
    def get_user(self, user_id: object) -> dict:
        view = self.reader.user_view(user_id) if isinstance(user_id, str) else None
        if view is None:
            raise DomainError("not_found", "no such user", param="user_id")
        now = self.clock.now()
        tokens = self.reader.tokens_of(view["id"])
        for token in tokens:
            token["status"] = ("revoked" if token["revoked_at"] else
                               "inactive" if not view["active"] else
                               "expired" if datetime.fromisoformat(token["expires_at"]) <= now
                               else "active")
        return {**view, "staff_tokens": tokens}

    # -- commands -------------------------------------------------------------------------
    def add_user(self, account_id: object, email: object, role: object,
                 actor: StaffPrincipal) -> dict:
        check_role(role)
        if not isinstance(email, str) or len(email) > 254 or not EMAIL.match(email.strip()):
            raise DomainError("invalid_request", "email must be an e-mail address", param="email")
        if account_id is not None:
            if role in STAFF_ROLES:
                raise DomainError("invalid_request", "admin and owner are operator staff and "
                                  "belong to no account", param="account_id")
            load_account(self.accounts, account_id)
        user_id = new_id("usr")
        # An account's users are erased with it (its data key); staff have a key of their own.
        email_enc = self.cipher.encrypt(email.strip().lower(), account_id or user_id)

        def command() -> tuple[User, int]:
            check_authority(self._actor(actor).role, role, role)  # type: ignore[arg-type]
            user = User(user_id=user_id, account_id=account_id, role=role,
                        email_enc=email_enc, actor=_name(actor))
            roster = self._roster() if role == "owner" else None
            if roster is not None:
                roster.add(user_id)
            return user, self._save(user, roster)

        user, position = with_retry(command)
        self._caught_up(position)
        return _reply(user)

    def change_role(self, user_id: object, role: object, reason: object,
                    actor: StaffPrincipal) -> dict:
        check_role(role)
        reason_text(reason)

        def command() -> tuple[User, int]:
            me = self._actor(actor)
            user = self._user(user_id)
            check_authority(me.role, user.role, role)  # type: ignore[arg-type]
            old = user.role
            if not user.change_role(role, reason, _name(actor)):
                return user, 0
            roster = self._roster() if "owner" in (old, role) else None
            if roster is not None:
                (roster.remove if old == "owner" else roster.add)(user.user_id)
            return user, self._save(user, roster)

        user, position = with_retry(command)
        self._caught_up(position)
        return _reply(user)

    def grant_permission(self, user_id: object, permission: object, reason: object,
                         actor: StaffPrincipal) -> dict:
        return self._owner_command(user_id, lambda user: user.grant(permission, reason,
                                                                    _name(actor)), actor)

    def revoke_permission(self, user_id: object, permission: object, reason: object,
                          actor: StaffPrincipal) -> dict:
        return self._owner_command(user_id, lambda user: user.revoke_permission(
            permission, reason, _name(actor)), actor)

    def _owner_command(self, user_id: object, change: Callable[[User], bool],
                       actor: StaffPrincipal) -> dict:
        """Only an owner grants or revokes finance/audit permissions (1.4)."""

        def command() -> tuple[User, int]:
            if self._actor(actor).role != "owner":
                raise Forbidden("only an owner grants or revokes permissions")
            user = self._user(user_id)
            return user, (self._save(user) if change(user) else 0)

        user, position = with_retry(command)
        self._caught_up(position)
        return _reply(user)

    def deactivate(self, user_id: object, reason: object, actor: StaffPrincipal) -> dict:
        reason_text(reason)

        def command() -> tuple[User, int]:
            me = self._actor(actor)
            user = self._user(user_id)
            check_authority(me.role, user.role, user.role)
            if not user.deactivate(reason, _name(actor)):
                return user, 0
            roster = self._roster() if user.role == "owner" else None
            if roster is not None:
                roster.remove(user.user_id)
            return user, self._save(user, roster)

        user, position = with_retry(command)
        self._caught_up(position)  # its tokens are refused from here on (1.5)
        return _reply(user)

    def issue_staff_token(self, user_id: object, expires_in_days: object,
                          actor: StaffPrincipal) -> IssuedStaffToken:
        target = actor.user_id if user_id is None else user_id
        if not isinstance(target, str):
            raise DomainError("invalid_request", "user_id must be a string", param="user_id")
        expires = token_expiry(expires_in_days, self.clock.now())
        secret, token_id = generate_staff_token(), new_id("stk")

        def command() -> int:
            self._may_act_for(self._actor(actor), target, actor, "issue staff tokens")
            user = self._user(target)
            user.issue_token(token_id, display_prefix(secret), last4(secret),
                             secret_hash(self.pepper, secret), expires)
            return self._save(user)

        self._caught_up(with_retry(command))  # the token works once it is handed out
        return IssuedStaffToken(token_id, target, secret, display_prefix(secret),
                                last4(secret), expires.isoformat())

    def revoke_staff_token(self, token_id: object, actor: StaffPrincipal) -> None:
        owner = self.reader.staff_token_owner(token_id) if isinstance(token_id, str) else None
        if owner is None:
            raise DomainError("not_found", "no such staff token", param="token_id")

        def command() -> int:
            self._may_act_for(self._actor(actor), owner, actor, "revoke staff tokens")
            user = self._user(owner)
            return self._save(user) if user.revoke_token(token_id, _name(actor)) else 0

        self._caught_up(with_retry(command))

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _may_act_for(me: User, target: str, actor: StaffPrincipal, what: str) -> None:
        """Staff tokens: an admin acts for themself only, an owner for anyone (12)."""
        if me.role not in STAFF_ROLES:
            raise Forbidden(f"only admins and owners {what}", required="admin")
        if me.role != "owner" and target != actor.user_id:
            raise Forbidden(f"an admin may {what} only for themself")

    def _actor(self, principal: StaffPrincipal) -> User:
        try:
            me = self.app.repository.get(User.create_id(principal.user_id))
        except AggregateNotFoundError:
            me = None
        if me is None or not me.active:
            raise Forbidden("the acting staff user is not active", required="admin")
        return me

    def _user(self, user_id: object) -> User:
        if isinstance(user_id, str):
            try:
                return self.app.repository.get(User.create_id(user_id))
            except AggregateNotFoundError:
                pass
        raise DomainError("not_found", "no such user", param="user_id")

    def _roster(self) -> OwnerRoster:
        try:
            return self.app.repository.get(OwnerRoster.create_id())
        except AggregateNotFoundError:
            pass
        # An installation bootstrapped before the roster existed: until then the only way
        # to make an owner was the bootstrap, so its claim (an event, not a read model) is
        # the whole roster. Two first changes racing both create version 1: one retries.
        owners = set()
        try:
            owners.add(self.app.repository.get(OwnerBootstrap.create_id()).user_id)
        except AggregateNotFoundError:
            pass
        return OwnerRoster(owner_ids=sorted(owners))

    def _save(self, *aggregates: Any) -> int:
        return self.app.save(*(a for a in aggregates if a is not None))[-1].notification.id

    def _caught_up(self, position: int) -> None:
        if position:
            self.wait("access", position)


def _name(principal: StaffPrincipal) -> str:
    return f"staff:{principal.user_id}"


def _reply(user: User) -> dict:
    """A command's answer, from the aggregate just saved (the read model may still lag)."""
    return {"id": user.user_id, "object": "user", "account_id": user.account_id,
            "role": user.role, "permissions": sorted(user.permissions),
            "active": user.active}
