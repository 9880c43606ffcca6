"""Admin routes for staff users, roles, permissions and staff tokens (1.4, 1.5, 12).

They sit in the /admin route group (its guard demands an admin); the owner-only ones add
their own guard."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from litestar import Request, Response, delete, get, post

from application.principals import StaffPrincipal
from application.staff import StaffService
from domain.user import Forbidden
from entrypoints.http.admin import without_secret
from entrypoints.http.auth import gateway, origin
from entrypoints.http.context import json_object, json_response, read_body, staff_scope
from entrypoints.http.guards import staff, staff_of
from entrypoints.http.idempotent import idempotency_key, idempotent

BODY_LIMIT = 64 * 1024  # these bodies are a few short fields


Run = Callable[[StaffService, dict, StaffPrincipal], Any]


async def _command(request: Request, run: Run, status: int = 200,
                   secret: str | None = None) -> Response:
    """Parse, run one use case off the event loop, keep the idempotent reply (as admin.py's
    ``_command``, but the use case gets the principal: its rules depend on who acts).

    A refusal for lack of rank is a denied call to an admin route: recorded as a security
    event (1.4) and answered 403 ``forbidden``; it releases the Idempotency-Key."""
    principal = staff_of(request)
    gw = gateway(request)
    key = idempotency_key(request)
    raw = await read_body(request, limit=BODY_LIMIT)
    body = json_object(raw)

    async def produce(command_id: str | None) -> Response:
        result = await asyncio.to_thread(run, gw.staff, body, principal)
        return json_response(result, status)

    redact = functools.partial(without_secret, secret) if secret else None
    try:
        return await idempotent(gw.idempotency, staff_scope(principal), key, raw, produce,
                                redact=redact)
    except Forbidden as refusal:
        gw.security.access_denied(principal, refusal.required, origin(request))
        raise


@post("/admin/users")
async def add_user(request: Request) -> Response:
    def run(service, body, principal):
        return service.add_user(body.get("account_id"), body.get("email"),
                                body.get("role", "user"), principal)

    return await _command(request, run, 201)


@get("/admin/users/{user_id:str}")
async def get_user(request: Request, user_id: str) -> Response:
    service = gateway(request).staff
    return json_response(await asyncio.to_thread(service.get_user, user_id))


@post("/admin/users/{user_id:str}/role")
async def change_role(request: Request, user_id: str) -> Response:
    # admin suffices to call; granting or removing admin/owner is checked in the use case,
    # against the target's and actor's current roles (a refusal is recorded, 403).
    def run(service, body, principal):
        return service.change_role(user_id, body.get("role"), body.get("reason"), principal)

    return await _command(request, run)


@post("/admin/users/{user_id:str}/permissions", guards=[staff("owner")])
async def grant_permission(request: Request, user_id: str) -> Response:
    def run(service, body, principal):
        return service.grant_permission(user_id, body.get("permission"), body.get("reason"),
                                        principal)

    return await _command(request, run)


@delete("/admin/users/{user_id:str}/permissions/{permission:str}", status_code=200,
        guards=[staff("owner")])
async def revoke_permission(request: Request, user_id: str, permission: str) -> Response:
    query_reason = request.query_params.get("reason")  # DELETE bodies are unusual

    def run(service, body, principal):
        return service.revoke_permission(user_id, permission,
                                         body.get("reason", query_reason), principal)

    return await _command(request, run)


@post("/admin/users/{user_id:str}/deactivate")
async def deactivate_user(request: Request, user_id: str) -> Response:
    def run(service, body, principal):
        return service.deactivate(user_id, body.get("reason"), principal)

    return await _command(request, run)


@post("/admin/staff-tokens")
async def issue_staff_token(request: Request) -> Response:
    def run(service, body, principal):
        issued = service.issue_staff_token(body.get("user_id"), body.get("expires_in_days"),
                                           principal)
        return {"id": issued.token_id, "object": "staff_token", "token": issued.secret,
                "user_id": issued.user_id, "prefix": issued.prefix, "last4": issued.last4,
                "expires_at": issued.expires_at}

    return await _command(request, run, 201, secret="token")


@delete("/admin/staff-tokens/{token_id:str}", status_code=200)
async def revoke_staff_token(request: Request, token_id: str) -> Response:
    def run(service, body, principal):
        service.revoke_staff_token(token_id, principal)
        return {"id": token_id, "object": "staff_token", "status": "revoked"}

    return await _command(request, run)


ROUTES = [add_user, get_user, change_role, grant_permission, revoke_permission,
          deactivate_user, issue_staff_token, revoke_staff_token]
