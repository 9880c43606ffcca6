"""Finance routes: balances and statements, live or as of a past instant (6.3, 11.10)."""

from __future__ import annotations

import asyncio
import time

from litestar import Request, Response, get

from domain.errors import DomainError
from entrypoints.http.auth import gateway, staff_principal
from entrypoints.http.context import json_response
from entrypoints.http.time_params import optional_time
from projections.ledger_queries import ledger_of, page_request


@get("/finance/accounts/{account_id:str}/balance")
async def balance(request: Request, account_id: str) -> Response:
    staff_principal(request, "finance:read")
    as_of = optional_time(request, "as_of", allow_future=False)
    view = await asyncio.to_thread(gateway(request).balances.balance, account_id,
                                   int(time.time()), as_of)
    if view is None:
        raise DomainError("not_found", "no such account at that time", param="account_id")
    if as_of is not None:
        view["as_of"] = as_of
    return json_response(view)


@get("/finance/accounts/{account_id:str}/statement")
async def statement(request: Request, account_id: str) -> Response:
    staff_principal(request, "finance:read")
    as_of = optional_time(request, "as_of", allow_future=False)
    start, end = optional_time(request, "from"), optional_time(request, "to")
    query = request.query_params
    page = page_request(query.get("limit"), query.get("order"), query.get("cursor"))
    gw = gateway(request)
    exists = await asyncio.to_thread(gw.balances.balance, account_id, int(time.time()), as_of)
    if exists is None:
        raise DomainError("not_found", "no such account at that time", param="account_id")
    result = await asyncio.to_thread(ledger_of(gw).page, account_id, page, as_of=as_of,
                                     start=start, end=end)
    return json_response({"object": "list", "account_id": account_id, "as_of": as_of,
                          "balance_micros": exists["balance_micros"], **result})
