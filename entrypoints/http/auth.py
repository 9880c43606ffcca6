"""Route guards: API keys on /v1, staff tokens on /admin, /finance and /audit (1.2, 1.5)."""

from __future__ import annotations

from litestar import Request

from application import envelope, security_events
from application.envelope import Actor
from application.principals import KeyPrincipal, StaffPrincipal
from application.security_events import Origin
from domain.errors import DomainError
from entrypoints.http.context import credential


def gateway(request: Request):
    return request.app.state.gateway


def origin(request: Request) -> Origin:
    """The route template (not the path: ids stay out of security events) and client IP."""
    template = request.scope.get("path_template") or request.scope.get("path", "")
    client = request.client
    return Origin(f"{request.scope['method']} {template}", client.host if client else None)


def key_principal(request: Request, permission: str) -> KeyPrincipal:
    presented = credential(request, allow_x_api_key=True)
    recorder = gateway(request).security
    try:
        if not presented:
            raise DomainError("missing_api_key",
                              "an API key is required (Authorization: Bearer)")
        principal = gateway(request).access.authenticate_key(presented)
    except DomainError as error:  # recorded off the request path, never raising (11.3)
        recorder.refused(error.code, presented, permission, origin(request))
        raise
    envelope.identify(Actor("api_key", principal.key.key_id, principal.key.prefix))
    if not principal.allows(permission):
        recorder.key_misused(principal.key, "scope_violation", origin(request))
        raise DomainError("insufficient_scope", f"this key lacks the {permission} scope")
    security_events.bind(recorder, origin(request))  # for misuse found later (models)
    return principal


def staff_principal(request: Request, permission: str) -> StaffPrincipal:
    presented = credential(request, allow_x_api_key=False)
    recorder = gateway(request).security
    try:
        if not presented:
            raise DomainError("missing_api_key",
                              "a staff token is required (Authorization: Bearer)")
        principal = gateway(request).access.authenticate_staff(presented)
    except DomainError as error:
        recorder.refused(error.code, presented, permission, origin(request))
        raise
    envelope.identify(Actor("staff", principal.user_id))
    if not principal.allows(permission):
        recorder.access_denied(principal, permission, origin(request))
        raise DomainError("forbidden", f"this route requires {permission}")
    return principal
