"""Public status (8.7, 3.4): overall state, providers, models, incidents. No authentication.

Statuses are read live from routing's health (the passive 5-minute window and the circuit
breakers of this worker), so a pair going down shows on the next request, well within the
60 s of 3.2. Nothing here names a host, a credential, an account or a staff user.

A key presented on a /v1 route is still authenticated as on /v1/models (a staff token there
is refused, 1.4); /status takes no credential at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get

from application.catalog_view import BUILTIN_PROVIDER
from application.resolve import not_found_error
from domain.errors import DomainError
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response
from entrypoints.http.models import optional_key

ORDER = {"healthy": 0, "degraded": 1, "down": 2}
LIMIT_DEFAULT, LIMIT_MAX = 100, 500


def pair_status(gw: Any, slug: str, model_id: str,
                providers: dict[str, str] | None = None) -> str:
    """healthy / degraded / down of one (provider, model): an open provider breaker takes
    every model of the provider down with it. ``providers`` memoises provider states for
    one request (each is a breaker read, possibly from Redis)."""
    memo = {} if providers is None else providers
    if slug not in memo:
        memo[slug] = gw.routing.provider_status(slug)
    if memo[slug] == "down":
        return "down"
    return gw.routing.health.status(slug, model_id)


def best(statuses) -> str:
    """A model is as available as its best provider: routing fails over to it (2.7)."""
    return min(statuses, key=ORDER.__getitem__, default="healthy")


def _pairs(gw: Any) -> dict[str, dict[str, str]]:
    """model -> {provider slug -> status}, over the catalog's current offers."""
    out: dict[str, dict[str, str]] = {}
    providers: dict[str, str] = {}
    for model_id, offers in gw.catalog_view.snapshot.offers.items():
        for offer in offers:
            slug = offer.provider.slug
            if slug != BUILTIN_PROVIDER:
                out.setdefault(model_id, {})[slug] = pair_status(gw, slug, model_id, providers)
    return out


def provider_rows(gw: Any, open_incidents: list[dict]) -> list[dict[str, Any]]:
    per_provider: dict[str, list[str]] = {}
    for statuses in _pairs(gw).values():
        for slug, status in statuses.items():
            per_provider.setdefault(slug, []).append(status)
    rows = []
    providers = gw.catalog_view.snapshot.providers.values()
    for p in sorted((p for p in providers if p.enabled), key=lambda p: p.slug):
        statuses = per_provider.get(p.slug, [])
        counts = {s: statuses.count(s) for s in ORDER}
        if gw.routing.provider_status(p.slug) == "down" or \
                (statuses and counts["down"] == len(statuses)):
            status = "down"
        else:
            status = "degraded" if counts["degraded"] or counts["down"] else "healthy"
        rows.append({"slug": p.slug, "object": "provider_status", "name": p.name,
                     "status": status, "models": counts,
                     "open_incidents": sum(i["provider"] == p.slug for i in open_incidents)})
    return rows


def overall(rows: list[dict[str, Any]], open_incidents: list[dict]) -> str:
    serving = [r for r in rows if sum(r["models"].values())]
    if serving and all(r["status"] == "down" for r in serving):
        return "down"
    if open_incidents or any(r["status"] != "healthy" for r in rows):
        return "degraded"
    return "healthy"


def model_detail(gw: Any, model_id: str) -> dict[str, Any]:
    snap = gw.catalog_view.snapshot
    wanted = gw.inference.resolver.canonical(model_id) if len(model_id) <= 256 else model_id
    offers = [o for o in snap.offers.get(wanted, ()) if o.provider.slug != BUILTIN_PROVIDER]
    if not offers:
        raise not_found_error(model_id)
    providers = []
    for offer in offers:
        slug = offer.provider.slug
        view = gw.routing.board.view(slug, wanted)
        providers.append({
            "provider": slug, "name": offer.provider.name,
            "status": pair_status(gw, slug, wanted),
            "score": round(view.score, 1) if view and view.score is not None else None,
            "latency_ms": round(view.ttfb_ewma_ms) if view and view.ttfb_ewma_ms else None})
    slugs = {p["provider"] for p in providers}
    incidents = [i for i in gw.incident_queries.open_incidents()
                 if i["model"] == wanted or (i["model"] is None and i["provider"] in slugs)]
    return {"object": "model_status", "id": wanted,
            "status": best(p["status"] for p in providers), "providers": providers,
            "incidents": incidents}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _public(request: Request, build: Callable[[Any], dict[str, Any]],
                  authenticate: bool = True) -> Response:
    if authenticate:
        optional_key(request)  # a bad key or a staff token is refused as on /v1/models
    gw = gateway(request)
    # Breaker peeks may ask Redis and incidents are a query: off the event loop.
    return json_response(await asyncio.to_thread(build, gw))


@get("/status")
async def status_page(request: Request) -> Response:
    def build(gw: Any) -> dict[str, Any]:
        incidents = gw.incident_queries.open_incidents()
        rows = provider_rows(gw, incidents)
        return {"object": "status", "status": overall(rows, incidents), "updated_at": _now(),
                "providers": {s: sum(r["status"] == s for r in rows) for s in ORDER},
                "incidents": incidents}

    return await _public(request, build, authenticate=False)


@get("/v1/status/providers")
async def providers_status(request: Request) -> Response:
    def build(gw: Any) -> dict[str, Any]:
        return {"object": "list",
                "data": provider_rows(gw, gw.incident_queries.open_incidents())}

    return await _public(request, build)


@get("/v1/status/models")
async def models_status(request: Request) -> Response:
    def build(gw: Any) -> dict[str, Any]:
        data = [{"id": model_id, "object": "model_status", "status": best(statuses.values()),
                 "providers": {s: sum(v == s for v in statuses.values()) for s in ORDER}}
                for model_id, statuses in sorted(_pairs(gw).items())]
        return {"object": "list", "data": data}

    return await _public(request, build)


@get("/v1/status/models/{model_id:path}")
async def model_status(request: Request, model_id: str) -> Response:
    # A path parameter keeps the slashes of org/model ids and starts with "/".
    wanted = model_id.strip("/")
    return await _public(request, lambda gw: model_detail(gw, wanted))


@get("/v1/status/incidents")
async def incidents(request: Request) -> Response:
    raw = request.query_params.get("limit", str(LIMIT_DEFAULT))

    def build(gw: Any) -> dict[str, Any]:
        if not raw.isdigit() or not 1 <= int(raw) <= LIMIT_MAX:
            raise DomainError("invalid_request", f"limit must be 1 to {LIMIT_MAX}",
                              param="limit")
        data, more = gw.incident_queries.recent(int(raw))
        return {"object": "list", "data": data, "has_more": more}

    return await _public(request, build)


@get("/v1/status/incidents/{incident_id:str}")
async def incident(request: Request, incident_id: str) -> Response:
    def build(gw: Any) -> dict[str, Any]:
        found = gw.incident_queries.incident(incident_id)
        if found is None:
            raise DomainError("not_found", "no such incident", param="incident_id")
        return found

    return await _public(request, build)


ROUTES = [status_page, providers_status, models_status, model_status, incidents, incident]
