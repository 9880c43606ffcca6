"""Admin route of provider credit monitoring (3.6): the operator's balance at one provider as
the last scheduled read found it. It sits in the /admin group (admin guard).

It never calls the provider: the balance is the watch's cached reading (3.6 "cached"), with
when it was read and why the latest read failed, if it did.
"""

from __future__ import annotations

from litestar import Request, Response, get

from domain.errors import DomainError
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response


@get("/admin/providers/{slug:str}/balance")
async def provider_balance(request: Request, slug: str) -> Response:
    gw = gateway(request)
    if slug not in gw.catalog_view.snapshot.providers:
        raise DomainError("not_found", "no such provider", param="slug")
    # "monitored" false: not configured, disabled, or no balance API (balance stays null).
    return json_response({"object": "provider_balance", **gw.routing.credit.balance(slug)})


ROUTES = [provider_balance]
