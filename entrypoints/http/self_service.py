"""Key-holder routes: own balance, ledger and limits (6.3, 6.1, 1.10)."""

from __future__ import annotations

import asyncio
import time

from litestar import Request, Response, get

from domain.rate_limit_headers import reset_seconds
from domain.rate_limits import LIMIT_FIELDS
from entrypoints.http.admission import RATE_VERDICT
from entrypoints.http.auth import gateway
from entrypoints.http.context import json_response
from entrypoints.http.guards import key, key_of
from entrypoints.http.time_params import optional_time
from projections.ledger_queries import ledger_of, page_request


@get("/v1/account/balance", guards=[key("billing:read")])
async def own_balance(request: Request) -> Response:
    principal = key_of(request)
    gw = gateway(request)
    view = await asyncio.to_thread(gw.balances.balance, principal.account_id, int(time.time()))
    return json_response(view)


@get("/v1/account/ledger", guards=[key("billing:read")])
async def own_ledger(request: Request) -> Response:
    principal = key_of(request)
    gw = gateway(request)
    start = optional_time(request, "from")
    end = optional_time(request, "to")
    query = request.query_params
    page = page_request(query.get("limit"), query.get("order"), query.get("cursor"))
    result = await asyncio.to_thread(ledger_of(gw).page, principal.account_id, page,
                                     start=start, end=end)
    return json_response({"object": "list", **result})


@get("/v1/limits", guards=[key("keys:read")])
async def own_limits(request: Request) -> Response:
    """The calling key's limits and what is left in each window (1.10), as its admission
    just saw them (this call is counted like any other)."""
    profile, verdict = request.scope["state"][RATE_VERDICT]
    windows = [{"window": w.name, "unit": w.unit, "limit": w.limit, "remaining": w.remaining,
                "reset_seconds": reset_seconds(w.reset_us)} for w in verdict.windows]
    limits = {name: getattr(profile, name) for name in LIMIT_FIELDS}
    return json_response({"object": "rate_limits", "profile": profile.name,
                          "limits": limits, "windows": windows})

