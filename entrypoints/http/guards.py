"""Route guards (1.4, 1.5): one guard per permission, declared on the route or its group.

A guard authenticates the caller for its permission and leaves the principal on the
connection; the handler reads it with ``principal_of``. Each guard carries the permission
it demands (``guard.requires``) so the permission matrix is generated from the route table.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection

from application.principals import KeyPrincipal, StaffPrincipal
from entrypoints.http.admission import admit
from entrypoints.http.auth import key_principal, staff_principal
from entrypoints.http.limits import AUTHENTICATED

# Async on purpose: Litestar runs a sync guard in a thread pool, which costs a thread hop
# per request and loses the context variables (actor, security origin) the guard sets.
Guard = Callable[[ASGIConnection, Any], Awaitable[None]]
_PRINCIPAL = "principal"


@functools.cache
def key(permission: str) -> Guard:
    """An API key whose scopes include ``permission``, on a /v1 route."""

    async def guard(connection: ASGIConnection, _: Any) -> None:
        state = connection.scope["state"]
        principal = state[_PRINCIPAL] = key_principal(connection, permission)
        state[AUTHENTICATED] = True
        await admit(connection, principal)

    guard.requires = ("key", permission)  # type: ignore[attr-defined]
    guard.__qualname__ = f"key({permission})"
    return guard


@functools.cache
def staff(permission: str) -> Guard:
    """A staff token whose user holds ``permission`` (a role: admin, owner; or one of the
    separately granted finance/audit permissions)."""

    async def guard(connection: ASGIConnection, _: Any) -> None:
        connection.scope["state"][_PRINCIPAL] = staff_principal(connection, permission)

    guard.requires = ("staff", permission)  # type: ignore[attr-defined]
    guard.__qualname__ = f"staff({permission})"
    return guard


def principal_of(connection: ASGIConnection) -> Any:
    """The principal the route's guard authenticated."""
    return connection.scope["state"][_PRINCIPAL]


def key_of(connection: ASGIConnection) -> KeyPrincipal:
    return connection.scope["state"][_PRINCIPAL]


def staff_of(connection: ASGIConnection) -> StaffPrincipal:
    return connection.scope["state"][_PRINCIPAL]
