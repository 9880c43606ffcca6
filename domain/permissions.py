"""Roles and (resource, action) permissions of spec 1.4: the one home of who may do what.

Customer permissions are ``resource:action`` strings; a key's effective permissions are its
scopes intersected with what its account's customers may hold (``developer`` at most), so a
key never carries a staff resource. Staff routes ask for a role (``admin``, ``owner``) or a
separately granted permission (``finance:read``, ``audit:read``, ``audit:verify``).
Who may change a role is a rule of the User aggregate (domain/user.py, check_authority).
"""

from __future__ import annotations

ROLES = ("user", "developer", "admin", "owner")
CUSTOMER_ROLES = ("user", "developer")
STAFF_ROLES = ("admin", "owner")
GRANTABLE = ("finance:read", "audit:read", "audit:verify")

# Resources a customer reads and writes in its own account (1.4's table).
_OWN_RESOURCES = ("keys", "usage", "billing", "account", "budgets", "webhooks", "prompts",
                  "batches", "routes", "guardrails", "sessions", "evaluations")
_USE = ("inference:use", "models:read")

USER_PERMISSIONS = frozenset((*_USE, *(f"{r}:read" for r in _OWN_RESOURCES)))
DEVELOPER_PERMISSIONS = USER_PERMISSIONS | {f"{r}:write" for r in _OWN_RESOURCES}
CUSTOMER_SCOPES = tuple(sorted(DEVELOPER_PERMISSIONS))
ALL_SCOPES = "*"


def customer_permissions(role: str) -> frozenset[str]:
    """What a customer user of ``role`` may do in its own account (staff hold none)."""
    return DEVELOPER_PERMISSIONS if role == "developer" else \
        USER_PERMISSIONS if role == "user" else frozenset()


def effective_scopes(scopes: tuple[str, ...] | list[str]) -> frozenset[str]:
    """A key's permissions: ``*`` means every customer permission (developer at most)."""
    if ALL_SCOPES in scopes:
        return DEVELOPER_PERMISSIONS
    return DEVELOPER_PERMISSIONS.intersection(scopes)


def key_allows(scopes: tuple[str, ...] | list[str], permission: str) -> bool:
    return permission in effective_scopes(scopes)


def staff_allows(role: str, granted: tuple[str, ...] | list[str], permission: str) -> bool:
    """``admin`` and ``owner`` are ranks (an owner may do what an admin may); finance and
    audit permissions are held only when granted, whatever the role (separation of duties)."""
    if permission in STAFF_ROLES:
        return role in STAFF_ROLES and ROLES.index(role) >= ROLES.index(permission)
    return permission in GRANTABLE and permission in granted


def grantable_by(creator_scopes: tuple[str, ...] | list[str],
                 wanted: tuple[str, ...] | list[str]) -> bool:
    """A key may create keys with at most its own permissions (403 insufficient_scope)."""
    return effective_scopes(wanted) <= effective_scopes(creator_scopes)
