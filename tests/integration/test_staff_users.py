"""Staff users over every event-store backend: roles, permissions, deactivation and staff
tokens (1.4, 1.5). The last-owner rule under concurrency is in test_staff_owner_roster.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import FrozenClock
from application.access import AuthError
from application.staff import StaffService
from domain.errors import DomainError
from domain.user import User
from integration.support import stream_events

REASON = "needed for an automated test"


def staff_service(gateway) -> StaffService:
    service = getattr(gateway, "staff", None)  # once the gateway builds one itself
    return service or StaffService(gateway.stores, gateway.access_queries,
                                   gateway.access.pepper, gateway.data_keys, gateway.clock,
                                   gateway.projector.wait_for)


@pytest.fixture
def staff(gateway) -> StaffService:
    return staff_service(gateway)


@pytest.fixture
def owner(gateway):
    _, token = gateway.access.bootstrap_owner("owner@example.com")
    return gateway.access.authenticate_staff(token)


def member(gateway, staff, owner, role: str = "admin", permissions=()) -> tuple:
    """A staff user added by the owner, holding ``permissions``, with a token: (id, token)."""
    user_id = staff.add_user(None, f"{role}@example.com", role, owner)["id"]
    for permission in permissions:
        staff.grant_permission(user_id, permission, REASON, owner)
    return user_id, staff.issue_staff_token(user_id, None, owner).secret


def types(gateway, user_id: str) -> list[str]:
    return [e.type for e in stream_events(gateway.stores.access, User.create_id(user_id))]


def refused(call, code: str, gateway) -> DomainError:
    """``call`` fails with ``code`` and writes no event (11.4: a rejected command)."""
    before = gateway.stores.max_positions()
    with pytest.raises(DomainError) as error:
        call()
    assert error.value.code == code, error.value.message
    assert gateway.stores.max_positions() == before
    return error.value


def test_an_owner_adds_an_admin_whose_token_works_and_is_shown_without_a_secret(
        gateway, staff, owner):
    user_id, token = member(gateway, staff, owner)

    principal = gateway.access.authenticate_staff(token)
    view = staff.get_user(user_id)

    assert principal.user_id == user_id and principal.allows("admin")
    assert not principal.allows("owner") and not principal.allows("audit:read")
    assert types(gateway, user_id) == ["User.Added", "User.StaffTokenIssued"]
    assert view["role"] == "admin" and view["active"] and view["permissions"] == []
    [shown] = view["staff_tokens"]
    assert shown["prefix"] == token[:12] and shown["last4"] == token[-4:]
    assert shown["status"] == "active" and shown["revoked_at"] is None
    assert token not in str(view) and "hash" not in str(view)
    assert "admin@example.com" not in str(view)  # e-mails stay encrypted in the events
    raw = b"".join(e.raw for e in stream_events(gateway.stores.access,
                                                User.create_id(user_id)))
    assert b"admin@example.com" not in raw and token.encode() not in raw


def test_an_admin_adds_customer_users_to_an_account_but_never_staff(gateway, staff, owner):
    _, token = member(gateway, staff, owner)
    admin = gateway.access.authenticate_staff(token)
    account_id = gateway.accounts.open_account("acme@example.com", "dev", "staff:test")

    added = staff.add_user(account_id, "Dev@Example.com", "developer", admin)

    assert added["account_id"] == account_id and added["role"] == "developer"
    assert staff.get_user(added["id"])["role"] == "developer"
    refused(lambda: staff.add_user(None, "a2@example.com", "admin", admin), "forbidden", gateway)
    refused(lambda: staff.add_user(None, "o2@example.com", "owner", admin), "forbidden", gateway)
    refused(lambda: staff.add_user("acct_missing", "x@example.com", "user", admin),
            "not_found", gateway)
    refused(lambda: staff.add_user(account_id, "x@example.com", "admin", owner),
            "invalid_request", gateway)
    refused(lambda: staff.add_user(None, "not an email", "user", owner), "invalid_request",
            gateway)
    refused(lambda: staff.add_user(None, "x@example.com", "root", owner), "invalid_request",
            gateway)


def test_an_admin_cannot_grant_admin_and_an_owner_can_with_one_role_changed_event(
        gateway, staff, owner):
    _, token = member(gateway, staff, owner)
    admin = gateway.access.authenticate_staff(token)
    target = staff.add_user(None, "dev@example.com", "developer", owner)["id"]

    denied = refused(lambda: staff.change_role(target, "admin", REASON, admin), "forbidden",
                     gateway)
    assert denied.required == "owner"
    staff.change_role(target, "admin", REASON, owner)

    assert staff.get_user(target)["role"] == "admin"
    events = stream_events(gateway.stores.access, User.create_id(target))
    changed = [e for e in events if e.type == "User.RoleChanged"]
    assert len(changed) == 1
    assert (changed[0].data["old"], changed[0].data["new"]) == ("developer", "admin")
    assert changed[0].data["reason"] == REASON
    staff.change_role(target, "admin", REASON, owner)  # the same role again: no event
    assert types(gateway, target).count("User.RoleChanged") == 1


def test_an_admin_sets_user_or_developer_but_never_touches_admins_or_owners(
        gateway, staff, owner):
    _, token = member(gateway, staff, owner)
    admin = gateway.access.authenticate_staff(token)
    other_admin, _ = member(gateway, staff, owner)
    customer = staff.add_user(None, "c@example.com", "user", admin)["id"]

    assert staff.change_role(customer, "developer", REASON, admin)["role"] == "developer"
    refused(lambda: staff.change_role(other_admin, "developer", REASON, admin), "forbidden",
            gateway)
    refused(lambda: staff.change_role(owner.user_id, "developer", REASON, admin), "forbidden",
            gateway)
    refused(lambda: staff.deactivate(other_admin, REASON, admin), "forbidden", gateway)
    refused(lambda: staff.change_role(customer, "user", "too short", admin),
            "invalid_request", gateway)
    refused(lambda: staff.change_role("usr_missing", "user", REASON, admin), "not_found",
            gateway)


def test_a_demoted_admin_loses_the_admin_routes_at_once(gateway, staff, owner):
    user_id, token = member(gateway, staff, owner)
    assert gateway.access.authenticate_staff(token).allows("admin")  # warm the 1 s cache

    staff.change_role(user_id, "developer", "no longer on the operations team", owner)

    assert not gateway.access.authenticate_staff(token).allows("admin")
    denied = refused(lambda: staff.add_user(None, "x@example.com", "user",
                                            gateway.access.authenticate_staff(token)),
                     "forbidden", gateway)
    assert denied.required == "admin"


def test_only_an_owner_grants_and_revokes_finance_and_audit_permissions(gateway, staff, owner):
    _, token = member(gateway, staff, owner)
    admin = gateway.access.authenticate_staff(token)
    auditor = staff.add_user(None, "auditor@example.com", "user", owner)["id"]

    refused(lambda: staff.grant_permission(auditor, "audit:read", REASON, admin), "forbidden",
            gateway)
    refused(lambda: staff.grant_permission(auditor, "keys:write", REASON, owner),
            "invalid_request", gateway)
    refused(lambda: staff.issue_staff_token(auditor, None, owner), "invalid_request", gateway)
    staff.grant_permission(auditor, "audit:read", REASON, owner)
    secret = staff.issue_staff_token(auditor, None, owner).secret
    principal = gateway.access.authenticate_staff(secret)
    assert principal.allows("audit:read") and not principal.allows("admin")
    assert staff.get_user(auditor)["permissions"] == ["audit:read"]

    refused(lambda: staff.revoke_permission(auditor, "audit:read", REASON, admin), "forbidden",
            gateway)
    staff.revoke_permission(auditor, "audit:read", REASON, owner)
    staff.revoke_permission(auditor, "audit:read", REASON, owner)  # not held: no event

    assert not gateway.access.authenticate_staff(secret).allows("audit:read")
    assert staff.get_user(auditor)["permissions"] == []
    assert types(gateway, auditor) == ["User.Added", "User.PermissionGranted",
                                       "User.StaffTokenIssued", "User.PermissionRevoked"]


def test_deactivation_stops_every_token_and_freezes_the_user(gateway, staff, owner):
    user_id, token = member(gateway, staff, owner)
    second = staff.issue_staff_token(user_id, 5, owner).secret
    gateway.access.authenticate_staff(token)  # cached: deactivation must still apply

    staff.deactivate(user_id, "left the company on friday", owner)

    for secret in (token, second):
        with pytest.raises(AuthError) as error:
            gateway.access.authenticate_staff(secret)
        assert error.value.code == "invalid_api_key"
    view = staff.get_user(user_id)
    assert not view["active"] and view["deactivated_at"]
    assert {t["status"] for t in view["staff_tokens"]} == {"inactive"}
    refused(lambda: staff.change_role(user_id, "owner", REASON, owner), "conflict", gateway)
    refused(lambda: staff.issue_staff_token(user_id, None, owner), "conflict", gateway)
    refused(lambda: staff.grant_permission(user_id, "audit:read", REASON, owner), "conflict",
            gateway)
    staff.deactivate(user_id, "a second deactivation", owner)  # nothing left to do
    assert types(gateway, user_id).count("User.Deactivated") == 1


def test_staff_tokens_expire_after_30_days_by_default_and_90_at_most(gateway, staff, owner):
    clock = FrozenClock(datetime.now(UTC))
    gateway.access.clock = staff.clock = clock
    user_id, token = member(gateway, staff, owner)
    longest = staff.issue_staff_token(user_id, 90, owner)

    assert datetime.fromisoformat(longest.expires_at) == clock.now() + timedelta(days=90)
    for days in (0, 91, "30", 1.5, True):
        refused(lambda d=days: staff.issue_staff_token(user_id, d, owner), "invalid_request",
                gateway)
    clock.advance(30 * 86_400 - 1)
    assert gateway.access.authenticate_staff(token).user_id == user_id
    clock.advance(2)
    gateway.access.forget_cached()
    with pytest.raises(AuthError) as error:
        gateway.access.authenticate_staff(token)
    assert error.value.code == "api_key_expired"
    assert gateway.access.authenticate_staff(longest.secret).user_id == user_id


def test_an_admin_issues_and_revokes_only_their_own_tokens_an_owner_anyone(
        gateway, staff, owner):
    admin_id, token = member(gateway, staff, owner)
    admin = gateway.access.authenticate_staff(token)
    other_id, other_token = member(gateway, staff, owner)
    other_token_id = gateway.access.authenticate_staff(other_token).staff.token_id

    mine = staff.issue_staff_token(None, None, admin)
    assert mine.user_id == admin_id
    refused(lambda: staff.issue_staff_token(other_id, None, admin), "forbidden", gateway)
    refused(lambda: staff.revoke_staff_token(other_token_id, admin), "forbidden", gateway)
    refused(lambda: staff.revoke_staff_token("stk_missing", admin), "not_found", gateway)

    staff.revoke_staff_token(mine.token_id, admin)
    staff.revoke_staff_token(other_token_id, owner)
    staff.revoke_staff_token(other_token_id, owner)  # already revoked: no event

    for secret in (mine.secret, other_token):
        with pytest.raises(AuthError):
            gateway.access.authenticate_staff(secret)
    assert gateway.access.authenticate_staff(token).user_id == admin_id  # the rest still work
    assert types(gateway, other_id).count("User.StaffTokenRevoked") == 1
    [revoked] = [t for t in staff.get_user(other_id)["staff_tokens"]]
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
