"""Route guards: API keys on /v1, staff tokens on /admin, /finance and /audit (1.2, 1.5)."""

from __future__ import annotations

from litestar import Request

from application import envelope
from application.envelope import Actor
from application.principals import KeyPrincipal, StaffPrincipal
from domain.errors import DomainError
from entrypoints.http.context import credential


def gateway(request: Request):
    return request.app.state.gateway


def key_principal(request: Request, permission: str) -> KeyPrincipal:
    presented = credential(request, allow_x_api_key=True)
    if not presented:
        raise DomainError("missing_api_key", "an API key is required (Authorization: Bearer)")
    principal = gateway(request).access.authenticate_key(presented)
    envelope.identify(Actor("api_key", principal.key.key_id, principal.key.prefix))
    if not principal.allows(permission):
        raise DomainError("insufficient_scope", f"this key lacks the {permission} scope")
    return principal


def staff_principal(request: Request, permission: str) -> StaffPrincipal:
    presented = credential(request, allow_x_api_key=False)
    if not presented:
        raise DomainError("missing_api_key", "a staff token is required (Authorization: Bearer)")
    principal = gateway(request).access.authenticate_staff(presented)
    envelope.identify(Actor("staff", principal.user_id))
    if not principal.allows(permission):
        raise DomainError("forbidden", f"this route requires {permission}")
    return principal
