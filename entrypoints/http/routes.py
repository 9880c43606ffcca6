"""Traffic-split routes of an account (2.12): `/v1/routes`, for keys with routes:read/write."""

from __future__ import annotations

import asyncio

from litestar import Request, Response, delete, get, put

from application.principals import KeyPrincipal
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response
from entrypoints.http.guards import key, key_of
from entrypoints.http.keys import _actor, _command


@get("/v1/routes", guards=[key("routes:read")])
async def list_routes(request: Request) -> Response:
    principal = key_of(request)
    data = await asyncio.to_thread(gateway(request).routing.routes.list, principal.account_id)
    return json_response({"object": "list", "data": data})


@put("/v1/routes/{name:str}", guards=[key("routes:write")])
async def define_route(request: Request, name: str) -> Response:
    def run(gw, principal: KeyPrincipal, body: dict) -> dict:
        route = gw.routing.routes.define(principal.account_id, name, body, _actor(principal))
        gw.catalog_view.refresh()
        return {"object": "route", "name": route.name, "targets": route.to_json()}

    return await _command(request, run)


@delete("/v1/routes/{name:str}", guards=[key("routes:write")], status_code=200)
async def delete_route(request: Request, name: str) -> Response:
    def run(gw, principal: KeyPrincipal, body: dict) -> dict:
        gw.routing.routes.delete(principal.account_id, name, _actor(principal))
        gw.catalog_view.refresh()
        return {"object": "route", "name": name.lower(), "deleted": True}

    return await _command(request, run)


ROUTES = [list_routes, define_route, delete_route]
