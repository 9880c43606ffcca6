"""Admin routes of the catalog and routing (5.1, 2.2, 2.4, 3.3, 3.5): providers, aliases,
model routing and scores, circuit breakers. They sit in the /admin group (admin guard).

Commands answer once their change is projected in this worker; the routing view refreshes
on the projection, so the next request already routes by it (5.1 "within 1 s").
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Request, Response, delete, get, patch, post, put

from application.catalog_view import ProviderInfo
from domain.circuit_breaker import provider_key
from domain.errors import DomainError
from entrypoints.http.admin import _command
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response
from entrypoints.http.guards import staff_of


def provider_json(gw: Any, p: ProviderInfo) -> dict[str, Any]:
    """A provider as admins see it: never the credential, only its last 4 characters."""
    return {"object": "provider", "slug": p.slug, "name": p.name, "protocol": p.protocol,
            "base_url": p.base_url, "enabled": p.enabled, "configured": p.registered,
            "priority": p.priority, "weight": p.weight, "timeout_ms": p.timeout_ms,
            "regions": list(p.regions), "passthrough": p.passthrough,
            "credential_last4": p.credential_last4 or None,
            "status": gw.provider_status(p.slug),
            "credit_level": gw.routing.credit.level(p.slug) if gw.routing.credit else None}


def _provider(gw: Any, slug: str) -> ProviderInfo:
    provider = gw.catalog_view.snapshot.providers.get(slug)
    if provider is None:
        raise DomainError("not_found", "no such provider", param="slug")
    return provider


@get("/admin/providers")
async def list_providers(request: Request) -> Response:
    gw = gateway(request)

    def build() -> dict[str, Any]:
        providers = sorted(gw.catalog_view.snapshot.providers.values(), key=lambda p: p.slug)
        return {"object": "list", "data": [provider_json(gw, p) for p in providers]}

    return json_response(await asyncio.to_thread(build))


@get("/admin/providers/health")
async def providers_health(request: Request) -> Response:
    """Passive health per (provider, model) as this worker saw it (3.2), and breakers."""
    gw = gateway(request)

    def build() -> dict[str, Any]:
        views = gw.routing.board.views()
        return {"object": "list", "data": [{
            "provider": v.provider, "model": v.model, "status": v.status, "score": v.score,
            "samples": v.samples, "successes": v.successes, "ttfb_ewma_ms": v.ttfb_ewma_ms,
            "total_ewma_ms": v.total_ewma_ms, "last_outcome": v.last_outcome,
            "last_status": v.last_status} for v in sorted(
                views, key=lambda v: (v.provider, v.model))]}

    return json_response(await asyncio.to_thread(build))


@get("/admin/providers/{slug:str}")
async def get_provider(request: Request, slug: str) -> Response:
    gw = gateway(request)
    return json_response(provider_json(gw, _provider(gw, slug)))


@patch("/admin/providers/{slug:str}")
async def configure_provider(request: Request, slug: str) -> Response:
    def run(gw, body, actor, command_id):
        gw.catalog.configure_provider(slug, body, actor)
        gw.catalog_view.refresh()
        return provider_json(gw, _provider(gw, slug))

    return await _command(request, run)


@post("/admin/providers/{slug:str}/credentials", status_code=200)
async def rotate_credentials(request: Request, slug: str) -> Response:
    def run(gw, body, actor, command_id):
        gw.catalog.rotate_credential(slug, body, actor)
        gw.catalog_view.refresh()
        return provider_json(gw, _provider(gw, slug))

    return await _command(request, run)


def _toggle(enabled: bool):
    async def handler(request: Request, slug: str) -> Response:
        def run(gw, body, actor, command_id):
            reason = body.get("reason", "")
            if not isinstance(reason, str) or len(reason) > 500:
                raise DomainError("invalid_request", "reason must be a string of at most "
                                  "500 characters", param="reason")
            gw.catalog.set_enabled(slug, enabled, reason, actor)
            gw.catalog_view.refresh()
            return provider_json(gw, _provider(gw, slug))

        return await _command(request, run)

    return handler


enable_provider = post("/admin/providers/{slug:str}/enable", status_code=200,
                       name="enable_provider")(_toggle(True))
disable_provider = post("/admin/providers/{slug:str}/disable", status_code=200,
                        name="disable_provider")(_toggle(False))


@put("/admin/aliases/{alias:str}")
async def set_alias(request: Request, alias: str) -> Response:
    def run(gw, body, actor, command_id):
        result = gw.catalog.models.set_alias(alias, body, actor)
        gw.catalog_view.refresh()
        return {"object": "alias", **result}

    return await _command(request, run)


@delete("/admin/aliases/{alias:str}", status_code=200)
async def remove_alias(request: Request, alias: str) -> Response:
    def run(gw, body, actor, command_id):
        gw.catalog.models.remove_alias(alias, actor)
        gw.catalog_view.refresh()
        return {"object": "alias", "alias": alias.lower(), "deleted": True}

    return await _command(request, run)


@get("/admin/aliases")
async def list_aliases(request: Request) -> Response:
    aliases = gateway(request).catalog_view.snapshot.aliases
    return json_response({"object": "list", "data": [
        {"alias": a, "target": t} for a, t in sorted(aliases.items())]})


def breaker_json(view: Any) -> dict[str, Any]:
    return {"key": view.key, "state": view.state,
            "consecutive_failures": view.consecutive_failures,
            "window_requests": view.window_requests, "window_failures": view.window_failures,
            "opened_at": view.opened_at, "retry_at": view.retry_at}


@get("/admin/circuit-breakers")
async def circuit_breakers(request: Request) -> Response:
    gw = gateway(request)
    views = await asyncio.to_thread(gw.routing.breakers.views)
    return json_response({"object": "list", "fallback_active":
                          gw.routing.breakers.fallback_active,
                          "data": [breaker_json(v) for v in sorted(views,
                                                                   key=lambda v: v.key)]})


@post("/admin/circuit-breakers/{provider:str}/reset", status_code=200)
async def reset_breakers(request: Request, provider: str) -> Response:
    """Close the provider's breaker and each of its (provider, model) ones; every reset
    that changed a state is a `Health.CircuitStateChanged` event naming the admin (3.3)."""
    gw = gateway(request)
    _provider(gw, provider)
    actor = f"staff:{staff_of(request).user_id}"

    def run() -> list[str]:
        keys = [provider_key(provider)] + [
            v.key for v in gw.routing.breakers.views()
            if v.key.startswith(f"pm:{provider}|")]
        reset = [key for key in keys
                 if gw.routing.reset(key, actor, always=key == keys[0]) is not None]
        gw.routing.health.forget()
        return reset

    reset = await asyncio.to_thread(run)
    return json_response({"object": "circuit_breaker_reset", "provider": provider,
                          "reset": reset, "at": time.time()})


ROUTES = [list_providers, providers_health, get_provider, configure_provider,
          rotate_credentials, enable_provider, disable_provider, set_alias, remove_alias,
          list_aliases, circuit_breakers, reset_breakers]
