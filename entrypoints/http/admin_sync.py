"""Admin routes of discovery sync (5.2): run a sync now, and see each provider's last runs.
They sit in the /admin group (admin guard).

The POST answers once the run's events are projected in this worker, so the catalog the
next request sees already holds what the run found.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from application.catalog_sync import interval_from_env
from domain.errors import DomainError
from entrypoints.http.admin import _command
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response
from projections.catalog_sync import SyncQueries


@post("/admin/catalog/sync", status_code=200)
async def sync_catalog(request: Request) -> Response:
    """Body optional: ``{"provider": "slug"}`` lists one provider, else every one."""

    def run(gw, body, actor, command_id):
        provider = body.get("provider")
        if provider is not None and not isinstance(provider, str):
            raise DomainError("invalid_request", "provider must be a provider slug",
                              param="provider")
        results = gw.catalog_sync.sync_now(provider)  # blocking: _command runs it in a thread
        return {"object": "catalog_sync", "data": [
            {"provider": slug, **counts} for slug, counts in sorted(results.items())]}

    return await _command(request, run)


@get("/admin/catalog/sync")
async def sync_status(request: Request) -> Response:
    gw = gateway(request)

    def build() -> dict[str, Any]:
        queries, interval = SyncQueries(gw.db), interval_from_env()
        stale = set(queries.stale_providers(gw.clock.now(), interval))
        return {"object": "list", "interval_s": interval, "data": [
            {"object": "catalog_sync_status", **row, "stale": row["provider"] in stale}
            for row in queries.status()]}

    return json_response(await asyncio.to_thread(build))


ROUTES = [sync_catalog, sync_status]
