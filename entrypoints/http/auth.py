"""Route guards: API keys on /v1, staff tokens on /admin, /finance and /audit (1.2, 1.5)."""

from __future__ import annotations

from litestar import Request

from application import envelope, security_events
from application.envelope import Actor
from application.principals import KeyPrincipal, StaffPrincipal
from application.security_events import Origin
from domain.client_address import ip_allowed, referrer_allowed, referrer_host
from domain.errors import DomainError
from entrypoints.http.context import credential


def gateway(request: Request):
    return request.app.state.gateway


def origin(request: Request) -> Origin:
    """The route template (not the path: ids stay out of security events) and client IP."""
    template = request.scope.get("path_template") or request.scope.get("path", "")
    return Origin(f"{request.scope['method']} {template}", client_of(request))


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
    _where_allowed(request, principal, recorder)
    if not principal.allows(permission):
        recorder.key_misused(principal.key, "scope_violation", origin(request))
        raise DomainError("insufficient_scope", f"this key lacks the {permission} scope")
    security_events.bind(recorder, origin(request))  # for misuse found later (models)
    return principal


def _where_allowed(request: Request, principal: KeyPrincipal, recorder) -> None:
    """Checks 5 and 6 of 1.2: the key's IP and referrer allowlists (empty: no limit)."""
    key = principal.key
    if key.ip_allowlist and not ip_allowed(client_of(request), key.ip_allowlist):
        recorder.key_misused(key, "ip_not_allowed", origin(request))
        raise DomainError("ip_not_allowed", "this key may not be used from this address")
    if key.referrer_allowlist:
        host = referrer_host(request.headers.get("origin"), request.headers.get("referer"))
        if not referrer_allowed(host, key.referrer_allowlist):
            recorder.key_misused(key, "referrer_not_allowed", origin(request))
            raise DomainError("referrer_not_allowed",
                              "this key may not be used from this site (Origin/Referer)")


def client_of(request: Request) -> str | None:
    """The client address the edge determined (trusted proxies honoured), else the peer."""
    known = request.scope.get("state", {}).get("client_ip")
    if known and known != "unknown":
        return known
    client = request.client
    return client.host if client else None


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
