"""Self-service key routes (1.1, 1.3): a key holder manages its own account's keys.

Another account's key answers exactly as an unknown id does (404 ``not_found``, same
message), so ids cannot be probed across accounts (1.4). A key may create or widen keys
with at most its own permissions.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from litestar import Request, Response, delete, get, patch, post

from application.feed import recorded_at
from application.principals import KeyPrincipal
from domain.errors import DomainError
from domain.permissions import grantable_by
from domain.rate_limits import LIMIT_FIELDS, profile_for
from entrypoints.http.admin import ISSUE_FIELDS, without_secret
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_object, json_response, key_scope, read_body
from entrypoints.http.guards import key, key_of
from entrypoints.http.idempotent import idempotency_key, idempotent

CREATIONS_PER_HOUR = 10  # per account's keys (1.1): the customer's users act through keys


def _actor(principal: KeyPrincipal) -> str:
    return f"key:{principal.key.key_id}"


def _ceiling(principal: KeyPrincipal) -> dict[str, int]:
    """The plan's rate limits: a key holder may only set a key's limits below them (1.1)."""
    plan = profile_for(principal.key.plan, restricted=principal.key.restricted,
                       explicit=principal.key.account_limits)
    return {name: getattr(plan, name) for name in LIMIT_FIELDS}


def own_key(gw, principal: KeyPrincipal, key_id: str) -> dict:
    """The key's view if it belongs to the caller's account; else 404 as if unknown."""
    view = gw.access_queries.key_view(key_id)
    if view is None or view["account_id"] != principal.account_id:
        raise DomainError("not_found", "no such key", param="key_id")
    return view


async def _command(request: Request, run: Callable[[Any, KeyPrincipal, dict], Any],
                   status: int = 200, secret: str | None = None) -> Response:
    """Parse, run one use case off the event loop, store the idempotent reply (the one-time
    secret replaced by null in what is stored, as on the admin routes)."""
    principal = key_of(request)
    gw = gateway(request)
    idem = idempotency_key(request)
    raw = await read_body(request, limit=1024 * 1024)
    body = json_object(raw)

    async def produce(command_id: str | None) -> Response:
        return json_response(await asyncio.to_thread(run, gw, principal, body), status)

    redact = functools.partial(without_secret, secret) if secret else None
    return await idempotent(gw.idempotency, key_scope(principal), idem, raw, produce,
                            redact=redact)


@post("/v1/keys", guards=[key("keys:write")])
async def create_key(request: Request) -> Response:
    def run(gw, principal: KeyPrincipal, body: dict) -> dict:
        _check_creation_rate(gw, principal)
        issued = gw.access.issue_key(
            principal.account_id, body.get("name"), body.get("environment", "live"),
            body.get("scopes"), body.get("expires_in_days"), _actor(principal),
            settings={k: v for k, v in body.items() if k not in ISSUE_FIELDS},
            creator_scopes=principal.key.scopes, ceiling=_ceiling(principal))
        view = gw.access_queries.key_view(issued.key_id)
        return {**view, "key": issued.secret}

    return await _command(request, run, 201, secret="key")


def _check_creation_rate(gw, principal: KeyPrincipal) -> None:
    now = gw.clock.now()
    recent = gw.access_queries.creations_since(principal.account_id, "key:",
                                               recorded_at(now - timedelta(hours=1)))
    if len(recent) >= CREATIONS_PER_HOUR:
        oldest = datetime.fromisoformat(recent[0].replace("Z", "+00:00"))
        wait = max(1, int((oldest + timedelta(hours=1) - now).total_seconds()) + 1)
        refusal = DomainError("rate_limit_exceeded",
                              f"at most {CREATIONS_PER_HOUR} keys may be created per hour")
        refusal.retry_after = wait  # type: ignore[attr-defined]  # the Retry-After header
        raise refusal


@get("/v1/keys", guards=[key("keys:read")])
async def list_keys(request: Request) -> Response:
    principal = key_of(request)
    keys = await asyncio.to_thread(gateway(request).access_queries.keys_of,
                                   principal.account_id)
    return json_response({"object": "list", "data": keys, "next_cursor": None})


@get("/v1/keys/{key_id:str}", guards=[key("keys:read")])
async def get_key(request: Request, key_id: str) -> Response:
    view = await asyncio.to_thread(own_key, gateway(request), key_of(request), key_id)
    return json_response(view)


@patch("/v1/keys/{key_id:str}", guards=[key("keys:write")])
async def update_key(request: Request, key_id: str) -> Response:
    def run(gw, principal: KeyPrincipal, body: dict) -> dict:
        # Another account's key is 404 inside update_key (account_id), as an unknown one.
        wanted = body.get("scopes")
        if isinstance(wanted, list) and not grantable_by(principal.key.scopes, wanted):
            raise DomainError("insufficient_scope", "a key cannot grant scopes beyond its own",
                              param="scopes")
        return gw.key_settings.update_key(key_id, body, _actor(principal),
                                          ceiling=_ceiling(principal), is_admin=False,
                                          account_id=principal.account_id)

    return await _command(request, run)


@post("/v1/keys/{key_id:str}/rotate", guards=[key("keys:write")])
async def rotate_key(request: Request, key_id: str) -> Response:
    def run(gw, principal: KeyPrincipal, body: dict) -> dict:
        own_key(gw, principal, key_id)
        issued = gw.access.rotate_key(key_id, body.get("grace_seconds"), _actor(principal))
        return {**gw.access_queries.key_view(key_id), "key": issued.secret}

    return await _command(request, run, secret="key")


@delete("/v1/keys/{key_id:str}", status_code=200, guards=[key("keys:write")])
async def revoke_key(request: Request, key_id: str) -> Response:
    def run(gw, principal: KeyPrincipal, body: dict) -> dict:
        own_key(gw, principal, key_id)
        reason = body.get("reason") or "revoked by the key holder"
        gw.access.revoke_key(key_id, reason, _actor(principal))
        return gw.access_queries.key_view(key_id)

    return await _command(request, run)


ROUTES = [create_key, list_keys, get_key, update_key, rotate_key, revoke_key]
