"""Admin routes: accounts, keys, credit grants, providers, prices, request records."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post, put

from domain.errors import DomainError
from entrypoints.http.auth import gateway
from entrypoints.http.context import (
    json_object,
    json_response,
    read_body,
    staff_scope,
)
from entrypoints.http.guards import staff_of
from entrypoints.http.idempotent import idempotency_key, idempotent

# Fields of a create body that are arguments of the issue itself; the rest are settings.
ISSUE_FIELDS = ("name", "environment", "scopes", "expires_in_days")


async def _command(request: Request, run: Callable[[Any, dict, str, str | None], Any],
                   status: int = 200,
                   key_required: bool = False, secret: str | None = None) -> Response:
    """Authenticate, parse, run one use case off the event loop, store the idempotent reply.

    ``secret`` names a response field shown once and never stored: with an Idempotency-Key
    the stored reply has it replaced, so a replay answers ``"<secret>": null,
    "<secret>_redacted": true`` with the rest (the same id) unchanged. A DomainError from
    the use case releases the key; any other error marks it ``unknown`` (never run twice).
    """
    principal = staff_of(request)
    gw = gateway(request)
    key = idempotency_key(request, required=key_required)
    raw = await read_body(request, limit=1024 * 1024)
    body = json_object(raw)
    actor = f"staff:{principal.user_id}"

    async def produce(command_id: str | None) -> Response:
        # command_id (derived from the Idempotency-Key) lets a use case make a repeat
        # collide in the event store itself, not only in the idempotency records.
        result = await asyncio.to_thread(run, gw, body, actor, command_id)
        return json_response(result, status)

    redact = functools.partial(without_secret, secret) if secret else None
    return await idempotent(gw.idempotency, staff_scope(principal), key, raw, produce,
                            redact=redact)


def without_secret(field: str, content: bytes) -> bytes:
    """The reply as stored: ``field`` replaced by null and ``<field>_redacted: true``."""
    reply = msgspec.json.decode(content)
    if isinstance(reply, dict) and field in reply:
        reply[field] = None
        reply[f"{field}_redacted"] = True
    return msgspec.json.encode(reply)


@post("/admin/accounts")
async def open_account(request: Request) -> Response:
    def run(gw, body, actor, command_id):
        account_id = gw.accounts.open_account(body.get("email"), body.get("plan", "dev"), actor)
        return {"id": account_id, "object": "account", "plan": body.get("plan", "dev")}

    return await _command(request, run, 201)


@post("/admin/accounts/{account_id:str}/keys")
async def issue_key(request: Request, account_id: str) -> Response:
    def run(gw, body, actor, command_id):
        issued = gw.access.issue_key(account_id, body.get("name"),
                                     body.get("environment", "live"), body.get("scopes"),
                                     body.get("expires_in_days"), actor,
                                     settings={k: v for k, v in body.items()
                                               if k not in ISSUE_FIELDS})
        return {"id": issued.key_id, "object": "api_key", "key": issued.secret,
                "prefix": issued.prefix, "last4": issued.last4, "account_id": account_id}

    return await _command(request, run, 201, secret="key")


@get("/admin/accounts/{account_id:str}/keys")
async def account_keys(request: Request, account_id: str) -> Response:
    keys = await asyncio.to_thread(gateway(request).access_queries.keys_of, account_id)
    return json_response({"object": "list", "data": keys, "next_cursor": None})


@get("/admin/keys/{key_id:str}")
async def get_key(request: Request, key_id: str) -> Response:
    view = await asyncio.to_thread(gateway(request).access_queries.key_view, key_id)
    if view is None:
        raise DomainError("not_found", "no such key", param="key_id")
    return json_response(view)


@post("/admin/keys/{key_id:str}/rotate")
async def rotate_key(request: Request, key_id: str) -> Response:
    def run(gw, body, actor, command_id):
        issued = gw.access.rotate_key(key_id, body.get("grace_seconds"), actor)
        return {"id": key_id, "object": "api_key", "key": issued.secret,
                "prefix": issued.prefix, "last4": issued.last4}

    return await _command(request, run, secret="key")


@post("/admin/keys/{key_id:str}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    def run(gw, body, actor, command_id):
        gw.access.revoke_key(key_id, body.get("reason"), actor)
        return {"id": key_id, "object": "api_key", "status": "revoked"}

    return await _command(request, run)


@post("/admin/credits/grants")
async def grant_credits(request: Request) -> Response:
    def run(gw, body, actor, command_id):
        gw.accounts.grant_credits(body.get("account_id"), body.get("amount_micros"),
                                  body.get("reason"), actor.removeprefix("staff:"),
                                  grant_id=command_id or "")
        return {"object": "credit_grant", "account_id": body.get("account_id"),
                "amount_micros": body.get("amount_micros"), "pool": "purchased"}

    return await _command(request, run, 201, key_required=True)


async def _check_resolved_host(request: Request) -> None:
    """Spec 5.1 at save time: a host name whose addresses are private is refused (the same
    rule is applied again at every connection). A name that does not resolve right now is
    accepted: this machine may be offline, and connect time checks again."""
    import socket
    from urllib.parse import urlsplit

    from adapters.checked_resolver import AddressNotAllowed, check_host

    body = json_object(await read_body(request, limit=1024 * 1024))
    url, allow_private = body.get("base_url"), body.get("allow_private", False)
    if not isinstance(url, str) or allow_private is True:
        return
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or 443
    except ValueError:
        return  # the command's own validation names the problem
    if not host:
        return
    try:
        await check_host(host, port, allow_private=False)
    except AddressNotAllowed as error:
        raise DomainError("invalid_base_url", f"base_url resolves to a disallowed address: "
                          f"{error}", param="base_url") from None
    except (OSError, socket.gaierror):
        return


@post("/admin/providers")
async def register_provider(request: Request) -> Response:
    await _check_resolved_host(request)

    def run(gw, body, actor, command_id):
        slug = gw.catalog.register_provider(body, actor)
        provider = gw.catalog_view.provider(slug)
        return {"slug": slug, "object": "provider", "base_url": provider.base_url,
                "enabled": provider.enabled, "credential_last4": provider.credential_last4}

    return await _command(request, run, 201)


@put("/admin/models/{model_path:path}")
async def set_model(request: Request, model_path: str) -> Response:
    # Model ids contain "/", so the route takes the rest of the path and reads the verb:
    # prices (6.2), routing (2.4, 2.6) or scores (3.5).
    model_id, _, verb = model_path.strip("/").rpartition("/")
    if verb not in ("prices", "routing", "scores") or not model_id:
        raise DomainError("not_found", "no such route")

    def run(gw, body, actor, command_id):
        if verb == "routing":
            result = {"object": "model_routing", **gw.catalog.models.set_routing(
                model_id, body, actor)}
        elif verb == "scores":
            result = {"object": "model_scores", **gw.catalog.models.set_scores(
                model_id, body, actor)}
        else:
            canonical = gw.catalog.models.set_prices(model_id, body, actor)
            result = {"model": canonical, "object": "model_price",
                      "provider": body.get("provider"), "prices": body.get("prices")}
        gw.catalog_view.refresh()
        return result

    return await _command(request, run)


def _maintenance(on: bool):
    async def handler(request: Request, model_path: str) -> Response:
        model_id, _, verb = model_path.strip("/").rpartition("/")
        if verb != "maintenance" or not model_id:
            raise DomainError("not_found", "no such route")

        def run(gw, body, actor, command_id):
            result = gw.catalog.models.set_maintenance(model_id, on, body, actor)
            gw.catalog_view.refresh()
            return result

        return await _command(request, run)

    return handler


# 2.7: a model in maintenance gets no traffic until it ends.
start_maintenance = post("/admin/models/{model_path:path}", status_code=200,
                         name="start_maintenance")(_maintenance(True))
end_maintenance = delete("/admin/models/{model_path:path}", status_code=200,
                         name="end_maintenance")(_maintenance(False))


@get("/admin/requests/{request_id:str}")
async def request_record(request: Request, request_id: str) -> Response:
    gw = gateway(request)
    record = await asyncio.to_thread(gw.usage.record, request_id)
    if record is None:

        raise DomainError("not_found", "no such request", param="request_id")
    return json_response(record)


@get("/admin/holds/verify")
async def verify_holds(request: Request) -> Response:
    """This worker's hold store against the open holds of the event store (the embedded
    store lives in the serving process, so this is where it can be checked)."""
    gw = gateway(request)
    differences = await asyncio.to_thread(gw.reconciler.verify)
    return json_response({"object": "holds_verification", "match": not differences,
                          "differences": differences[:100]})
