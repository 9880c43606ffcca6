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
from litestar.exceptions import HTTPException

from application.anonymous import ANONYMOUS, is_free_model, missing_key
from application.principals import KeyPrincipal, StaffPrincipal
from domain.errors import DomainError
from entrypoints.http.admission import admit
from entrypoints.http.auth import key_principal, origin, staff_principal
from entrypoints.http.context import credential, parse_json, read_body
from entrypoints.http.limits import AUTHENTICATED, CLIENT_IP, RATE_HEADERS

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


@functools.cache
def key_or_anonymous(permission: str) -> Guard:
    """An API key as ``key`` demands, or no credential at all for a free model (1.11):
    then the body's model must end in ``:free`` and the caller's address is within its 3
    anonymous requests of the UTC day."""
    with_key = key(permission)

    async def guard(connection: ASGIConnection, handler: Any) -> None:
        if credential(connection, allow_x_api_key=True):  # type: ignore[arg-type]
            await with_key(connection, handler)
            return
        gw = connection.app.state.gateway
        try:
            body = parse_json(await read_body(connection))  # type: ignore[arg-type]
        except (DomainError, HTTPException):  # too large (ours or Litestar's limit) or
            body = None  # unreadable: no free model asked for, so a key is missing
        if not is_free_model(body.get("model") if isinstance(body, dict) else None):
            gw.security.refused("missing_api_key", None, permission, origin(connection))
            raise missing_key()
        state = connection.scope["state"]
        verdict = await gw.limiter.anonymous(state.get(CLIENT_IP) or "unknown")
        state[RATE_HEADERS] = verdict.headers
        if not verdict.allowed:
            raise DomainError("rate_limit_exceeded", "this address has used its free "
                              "requests of the day; use an API key")
        state[_PRINCIPAL] = ANONYMOUS

    guard.requires = ("key", permission)  # type: ignore[attr-defined]
    guard.anonymous = True  # type: ignore[attr-defined]
    guard.__qualname__ = f"key_or_anonymous({permission})"
    return guard


def principal_of(connection: ASGIConnection) -> Any:
    """The principal the route's guard authenticated."""
    return connection.scope["state"][_PRINCIPAL]


def key_of(connection: ASGIConnection) -> KeyPrincipal:
    return connection.scope["state"][_PRINCIPAL]


def staff_of(connection: ASGIConnection) -> StaffPrincipal:
    return connection.scope["state"][_PRINCIPAL]
